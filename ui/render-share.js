/* Dockroute dashboard: the Share section. Teammates reach the exposed networks with the
   standard WireGuard app: "Add teammate" asks the helper for their config and shows it as a QR
   code (the config text stays in the app; "Save config" writes it to Downloads); each teammate
   row shows the last handshake, traffic and drops, with Revoke. View field: `share` (the
   helper's ShareStatus). */
(function (D) {
  "use strict";

  const { $, arr, obj, h, setText, setHidden, reconcile } = D.dom;
  const Format = D.format;
  const text = Format.text;

  /** Seconds-ago wording for a handshake age in ms. */
  function ago(ms) {
    if (!Format.isNum(ms)) return "never";
    const s = Math.round(ms / 1000);
    return s < 60 ? s + " s ago" : s < 3600 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
  }

  function sumDrops(drops) {
    return Object.values(obj(drops) || {}).reduce((a, n) => a + (Format.isNum(n) ? n : 0), 0);
  }

  function renderShare(v, state) {
    const share = obj(v.share);
    const expose = share && text(share.expose);
    const off = $("share-off");
    setHidden($("share-body"), !expose);
    setHidden(off, !!expose);
    if (!share) setText(off, "Connect to share your containers with teammates.");
    else if (!expose) setText(off, "Sharing is off: add “expose 0.0.0.0:2512” to the helper's config to let teammates in with the WireGuard app.");
    const listening = !!(share && share.listening);
    setText($("share-aside"), expose ? (listening ? "on " + expose : "not listening") : "");
    const error = share && text(share.error);
    setText($("share-error"), error || "");
    setHidden($("share-error"), !error);

    const teammates = arr(share && share.teammates).filter(obj);
    reconcile($("teammates"), teammates, (t, i) => text(t.name) || "teammate-" + i, (t) => JSON.stringify(t), teammateRow);
    setHidden($("teammates-empty"), teammates.length > 0);

    const issued = obj(state.issued);
    setHidden($("share-issued"), !issued);
    if (issued) {
      const img = $("share-qr");
      const src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(text(issued.qr_svg));
      if (img.getAttribute("src") !== src) img.setAttribute("src", src);
      setText($("share-issued-text"), text(issued.name) + " gets " + text(issued.address) +
        ". Install WireGuard, then Add tunnel → Create from QR code (or import the saved config). This is the only copy of their key.");
    }
    const busy = state.busy.has("add_teammate");
    $("share-add-button").disabled = busy;
    const other = obj(share && share.unattributed_drops);
    const n = sumDrops(other);
    setText($("share-drops"), n ? Format.plural(n, "datagram") + " from unknown senders dropped" : "");
  }

  function teammateRow(t) {
    const name = text(t.name);
    const c = obj(t.counters) || {};
    const drops = sumDrops(c.drops);
    const details = Object.entries(obj(c.drops) || {}).filter(([, n]) => n > 0).map(([k, n]) => k.replace(/_/g, " ") + " " + n);
    const connected = Format.isNum(t.last_handshake_ms) && t.last_handshake_ms < 180000;
    return h("li", { class: "teammate", "data-teammate": name, "data-connected": connected ? "yes" : "no" },
      h("div", { class: "network-main" },
        h("div", { class: "network-head" },
          h("span", { class: "name" }, name),
          h("span", { class: "mono sub" }, text(t.address))),
        h("div", { class: "network-meta" },
          h("span", {}, "handshake " + ago(t.last_handshake_ms)),
          h("span", {}, "↓ " + Format.bytes(c.rx_bytes || 0) + " ↑ " + Format.bytes(c.tx_bytes || 0)),
          drops ? h("span", { class: "teammate-drops", title: details.join(", ") }, Format.plural(drops, "drop")) : null),
        text(t.problem) ? h("p", { class: "conflict" }, text(t.problem)) : null),
      t.public_key ? h("button", { type: "button", class: "push-button revoke", "data-name": name }, "Revoke") : null);
  }

  D.sections.push(["share", renderShare]);
})(window.Dockroute);
