/* Dockroute throughput chart: two lines (tx, rx, bits per second) over the last minute, drawn
   into the inline <svg id="throughput-chart">. The geometry is pure (no DOM); drawing only
   updates the `d` attribute of paths created once, so a re-render every second never flickers. */
(function (root) {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const WIDTH = 300; // matches the viewBox in index.html
  const HEIGHT = 64;
  const WINDOW_MS = 60000;
  const MIN_SCALE = 1000; // an idle link draws flat along the bottom, not as noise blown up to full height

  const finite = (v) => typeof v === "number" && Number.isFinite(v);
  const rateOf = (v) => (finite(v) && v > 0 ? v : 0);

  /** Smallest 1/2/5 × 10^k that is ≥ value, so the scale label reads as a round number. */
  function niceCeil(value) {
    if (!finite(value) || value <= MIN_SCALE) return MIN_SCALE;
    const magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 5, 10]) {
      if (value <= step * magnitude * (1 + 1e-9)) return step * magnitude;
    }
    return 10 * magnitude;
  }

  const fmt = (n) => String(Math.round(n * 10) / 10);

  function linePath(points) {
    return points.map((p, i) => (i ? "L" : "M") + fmt(p[0]) + " " + fmt(p[1])).join(" ");
  }

  function areaPath(points) {
    if (points.length < 2) return "";
    const first = points[0];
    const last = points[points.length - 1];
    return linePath(points) + " L" + fmt(last[0]) + " " + HEIGHT + " L" + fmt(first[0]) + " " + HEIGHT + " Z";
  }

  /**
   * Pure: samples (oldest first) → { tx: {line, area}, rx: {line, area}, max, count }.
   * Samples are placed by t_ms when every one has it (gaps show as gaps in time), else one per second.
   */
  function geometry(samples) {
    const all = (Array.isArray(samples) ? samples : []).filter((s) => s && typeof s === "object");
    const byTime = all.length > 0 && all.every((s) => finite(s.t_ms));
    const timeOf = (s, i) => (byTime ? s.t_ms : i * 1000);
    const newest = all.length ? timeOf(all[all.length - 1], all.length - 1) : 0;
    // Only the last minute, plus one older sample so the line still starts at the left edge.
    const firstInside = all.findIndex((s, i) => newest - timeOf(s, i) <= WINDOW_MS);
    const start = Math.max(0, firstInside - 1);
    const clean = all.slice(start);
    const timeOfClean = (s, i) => timeOf(s, i + start);

    let peak = 0;
    for (const s of clean) peak = Math.max(peak, rateOf(s.tx_bps), rateOf(s.rx_bps));
    const max = niceCeil(peak);

    const xOf = (s, i) => Math.max(0, WIDTH - ((newest - timeOfClean(s, i)) / WINDOW_MS) * WIDTH);
    // Keep a 1-unit margin so the stroke at 0 and at max is not clipped by the viewBox.
    const yOf = (v) => HEIGHT - 1 - (Math.min(v, max) / max) * (HEIGHT - 2);

    const series = (key) => {
      const points = clean.map((s, i) => [xOf(s, i), yOf(rateOf(s[key]))]);
      // One sample is a dot nobody can see: stretch it into a short flat segment.
      if (points.length === 1) points.unshift([Math.max(0, points[0][0] - WIDTH / 60), points[0][1]]);
      return { line: points.length ? linePath(points) : "", area: areaPath(points) };
    };

    return { tx: series("tx_bps"), rx: series("rx_bps"), max, count: clean.length };
  }

  /** Creates (once) the area and line paths for a series inside svg. */
  function ensurePath(svg, className) {
    let path = svg.querySelector("path." + className.split(" ").join("."));
    if (!path) {
      path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("class", className);
      path.setAttribute("vector-effect", "non-scaling-stroke");
      svg.appendChild(path);
    }
    return path;
  }

  function setD(path, d) {
    if (path.getAttribute("d") !== d) path.setAttribute("d", d || "M0 0");
  }

  /** Draws samples into svg and returns the geometry (its max is the scale to label). */
  function draw(svg, samples) {
    const geo = geometry(samples);
    if (!svg) return geo;
    // Areas first so both lines sit on top of both fills; rx (usually the larger) behind tx.
    const rxArea = ensurePath(svg, "area area-rx");
    const txArea = ensurePath(svg, "area area-tx");
    const rxLine = ensurePath(svg, "line line-rx");
    const txLine = ensurePath(svg, "line line-tx");
    setD(rxArea, geo.rx.area);
    setD(txArea, geo.tx.area);
    setD(rxLine, geo.rx.line);
    setD(txLine, geo.tx.line);
    return geo;
  }

  const DockrouteChart = { geometry, draw, niceCeil, WIDTH, HEIGHT };
  root.DockrouteChart = DockrouteChart;
})(typeof window !== "undefined" ? window : globalThis);
