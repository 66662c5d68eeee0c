/* Dockroute dashboard: numbers and words for display. Pure (no DOM), so every section formats
   alike. The page's scripts share one namespace, window.Dockroute; this one loads first. */
(function (D) {
  "use strict";

  const isNum = (v) => typeof v === "number" && Number.isFinite(v);

  // Rounds the way the label will print, so "999.96 kB" becomes "1.0 MB" rather than "1000 kB".
  const shown = (v) => (v < 99.95 ? Math.round(v * 10) / 10 : Math.round(v));

  function scaled(value, units) {
    if (!isNum(value)) return "—";
    let v = Math.abs(value);
    let unit = 0;
    for (; unit < units.length - 1 && shown(v) >= 1000; unit++) v /= 1000;
    const digits = unit === 0 || v >= 99.95 ? 0 : 1;
    return (value < 0 ? "-" : "") + v.toFixed(digits) + " " + units[unit];
  }

  const Format = {
    isNum,
    /** Decimal units, as macOS shows sizes: 1234567 → "1.2 MB". */
    bytes: (n) => scaled(n, ["B", "kB", "MB", "GB", "TB", "PB"]),
    /** Bits per second: 3400000 → "3.4 Mbit/s". */
    rate: (bps) => scaled(bps, ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"]),
    /** Milliseconds since something happened: 1649 → "2 s ago". */
    age(ms) {
      if (!isNum(ms) || ms < 0) return "—";
      const s = Math.round(ms / 1000);
      if (s < 1) return "just now";
      for (const [unit, size, next] of [["s", 1, 60], ["min", 60, 3600], ["h", 3600, 86400]]) {
        if (s < next) return Math.floor(s / size) + " " + unit + " ago";
      }
      return Math.floor(s / 86400) + " d ago";
    },
    count: (n) => (isNum(n) ? String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",") : "—"),
    plural: (n, one, many) => Format.count(n) + " " + (n === 1 ? one : many || one + "s"),
    /** Counter keys to labels: "bad_inner_packet" → "Bad inner packet". */
    label(key) {
      const s = Format.text(key).replace(/[_-]+/g, " ").trim();
      return s ? s[0].toUpperCase() + s.slice(1) : "—";
    },
    /** Anything to display text; objects and null become "" rather than "[object Object]". */
    text: (v) => (typeof v === "string" ? v : isNum(v) || typeof v === "boolean" ? String(v) : ""),
  };

  D.format = Format;
})((window.Dockroute = window.Dockroute || {}));
