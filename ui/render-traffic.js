/* Dockroute dashboard: throughput (current rates, the last minute's chart, totals) and the
   dropped-packet counters by the names the engine gives its drop reasons. */
(function (D) {
  "use strict";

  const { $, arr, obj, h, setText, setHidden, reconcile } = D.dom;
  const Format = D.format;

  function renderTraffic(v) {
    const samples = arr(v.throughput).filter(obj);
    const latest = samples[samples.length - 1];
    setText($("rate-tx"), latest ? Format.rate(latest.tx_bps) : "—");
    setText($("rate-rx"), latest ? Format.rate(latest.rx_bps) : "—");
    const geo = window.DockrouteChart ? window.DockrouteChart.draw($("throughput-chart"), samples) : null;
    setText($("chart-max"), geo && samples.length ? Format.rate(geo.max) : "");
    setHidden($("chart-empty"), samples.length > 1);

    $("throughput-chart").classList.toggle("empty", samples.length < 2);

    const stats = obj(v.stats) || {};
    const packets = (n) => (Format.isNum(n) ? Format.plural(n, "packet") : "");
    setText($("tx-total"), Format.bytes(stats.tx_bytes));
    setText($("tx-packets"), packets(stats.tx_packets));
    setText($("rx-total"), Format.bytes(stats.rx_bytes));
    setText($("rx-packets"), packets(stats.rx_packets));
    setText($("handshakes"), Format.count(stats.handshakes));
  }

  function renderDrops(v) {
    const stats = obj(v.stats);
    const drops = Object.entries((stats && obj(stats.drops)) || {}).map(([name, count]) => [name, Format.isNum(count) ? count : 0]);
    const sum = drops.reduce((acc, [, count]) => acc + count, 0);
    setText($("drops-total"), stats ? Format.count(sum) : "—");
    $("drops").classList.toggle("has-drops", sum > 0);
    reconcile($("drops-list"), drops, ([name]) => name, (entry) => JSON.stringify(entry), ([name, count]) =>
      h("li", { class: "drop" + (count > 0 ? " nonzero" : ""), "data-drop": name },
        h("span", { class: "drop-label" }, Format.label(name)),
        h("span", { class: "drop-count" }, Format.count(count))));
  }

  D.sections.push(["traffic", renderTraffic], ["drops", renderDrops]);
})(window.Dockroute);
