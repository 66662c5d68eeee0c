/* Dockroute dashboard: DOM helpers every section uses. Every View field may be missing or null,
   so fields are read through arr/obj/text; text from the View only ever reaches the DOM as text
   nodes (h never parses markup). */
(function (D) {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const arr = (v) => (Array.isArray(v) ? v : []);
  const obj = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : null);

  /** Builds an element; attribute values and string children always land as text, never markup. */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false || child === "") continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // Writes only on change: no needless layout, and text selection survives the per-second refresh.
  const setText = (node, value) => node && node.textContent !== value && (node.textContent = value);
  const setHidden = (node, hidden) => node && node.hidden !== hidden && (node.hidden = hidden);
  const setDisabled = (node, disabled) => node && node.disabled !== disabled && (node.disabled = disabled);
  const setData = (node, key, value) => node && node.dataset[key] !== value && (node.dataset[key] = value);

  /**
   * Keyed list update: a row is rebuilt only when its signature changed and rows are moved, not
   * recreated, so unchanged rows keep focus, hover and the checkbox a user is holding.
   */
  function reconcile(list, items, keyOf, signatureOf, build) {
    const old = new Map();
    for (const child of Array.from(list.children)) old.set(child.dataset.key, child);
    const seen = new Set();
    let previous = null;
    items.forEach((item, index) => {
      let key = String(keyOf(item, index));
      if (seen.has(key)) key += "#" + index; // duplicate names must still get their own row
      seen.add(key);
      const signature = signatureOf(item);
      let row = old.get(key);
      old.delete(key);
      if (!row || row._signature !== signature) {
        const fresh = build(item);
        fresh.dataset.key = key;
        fresh._signature = signature;
        if (row) {
          const focusKey = row.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
          row.replaceWith(fresh);
          restoreFocus(fresh, focusKey);
        }
        row = fresh;
      }
      const expected = previous ? previous.nextSibling : list.firstChild;
      if (row !== expected) list.insertBefore(row, expected);
      previous = row;
    });
    old.forEach((row) => row.remove());
  }

  function restoreFocus(container, focusKey) {
    if (!focusKey) return;
    const target = Array.from(container.querySelectorAll("[data-focus]")).find((n) => n.dataset.focus === focusKey);
    if (target) target.focus({ preventScroll: true });
  }

  /** For a section's read of another section's data: that data being broken must not take this one down. */
  function safe(read, fallback) {
    try { return read(); } catch (err) { console.error("dockroute: bad field", err); return fallback; }
  }

  function errorText(err) {
    if (typeof err === "string") return err;
    if (err && typeof err.message === "string") return err.message;
    try { return JSON.stringify(err); } catch (_) { return String(err); }
  }

  /** The phase the page shows; a View without one counts as disconnected. */
  function phaseOf(v) {
    return typeof v.phase === "string" && v.phase ? v.phase : "disconnected";
  }

  D.dom = { $, arr, obj, h, setText, setHidden, setDisabled, setData, reconcile, safe, errorText, phaseOf };
  // Each section file adds its renderer here, in page order; app.js runs them on every View.
  D.sections = D.sections || [];
})((window.Dockroute = window.Dockroute || {}));
