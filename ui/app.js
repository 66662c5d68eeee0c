/* Dockroute dashboard: renders the `View` snapshot the Rust shell pushes (contract: ui-contract.md).
   Every field may be missing or null, so everything reads through the guards below, each section
   renders inside its own try/catch, and text from the View only ever reaches the DOM as text nodes. */
(function () {
  "use strict";

  // ─────────────────────────────────────────── formatting (pure; tested from node)

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
    /** Counter keys to labels: "bad_mac" → "Bad mac". */
    label(key) {
      const s = Format.text(key).replace(/[_-]+/g, " ").trim();
      return s ? s[0].toUpperCase() + s.slice(1) : "—";
    },
    /** Anything to display text; objects and null become "" rather than "[object Object]". */
    text: (v) => (typeof v === "string" ? v : isNum(v) || typeof v === "boolean" ? String(v) : ""),
  };

  if (typeof module !== "undefined" && module.exports) module.exports = Format;
  if (typeof window !== "undefined") window.DockrouteFormat = Format;
  if (typeof document === "undefined") return; // loaded by node for the formatting tests

  // ─────────────────────────────────────────── small helpers

  const $ = (id) => document.getElementById(id);
  const arr = (v) => (Array.isArray(v) ? v : []);
  const obj = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : null);
  const text = Format.text;
  const ACTION_LABELS = { install_helper: "Install helper…", retry: "Retry" };

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

  // ─────────────────────────────────────────── state and commands

  const state = {
    view: {}, receivedAt: Date.now(),
    busy: new Set(), // commands in flight, so their buttons can't be double-clicked
    pendingNetworks: new Map(), // name → enabled, while set_network_enabled is in flight
    pendingAutostart: null, copiedIp: null, copiedTimer: 0, toastTimer: 0,
  };

  let invokeImpl = () => Promise.reject("Not connected to Dockroute");

  function invoke(cmd, args) {
    try { return Promise.resolve(invokeImpl(cmd, args)); } catch (err) { return Promise.reject(err); }
  }

  /** Runs a command; a rejection becomes an error toast. Resolves to { ok, value }. */
  async function run(cmd, args) {
    state.busy.add(cmd);
    renderSafely();
    try {
      return { ok: true, value: await invoke(cmd, args) };
    } catch (err) {
      console.error("dockroute: " + cmd + " failed", err);
      toast(errorText(err) || cmd + " failed", "error");
      return { ok: false };
    } finally {
      state.busy.delete(cmd);
      renderSafely();
    }
  }

  function toast(message, kind) {
    const box = $("toast");
    box.textContent = message;
    box.dataset.kind = kind || "info";
    box.classList.add("visible");
    clearTimeout(state.toastTimer);
    state.toastTimer = setTimeout(() => box.classList.remove("visible"), kind === "error" ? 6000 : 2200);
  }

  // ─────────────────────────────────────────── render

  function render(view) {
    state.view = obj(view) || {};
    state.receivedAt = Date.now();
    renderSafely();
  }

  function renderSafely() {
    const v = state.view;
    for (const [name, renderSection] of RENDERERS) {
      try { renderSection(v); } catch (err) { console.error("dockroute: rendering " + name + " failed", err); }
    }
  }

  function phaseOf(v) {
    return typeof v.phase === "string" && v.phase ? v.phase : "disconnected";
  }

  function renderStatus(v) {
    const phase = phaseOf(v);
    setData(document.body, "phase", phase);
    setText($("phase"), phase);
    setText($("status-detail"), statusDetail(v, phase));

    const button = $("connect-button");
    const wantConnected = v.want_connected === true;
    setText(button, wantConnected ? "Disconnect" : "Connect");
    button.classList.toggle("primary", !wantConnected);
    setDisabled(button, state.busy.has("connect") || state.busy.has("disconnect"));
  }

  function statusDetail(v, phase) {
    const problemTitle = text(obj(v.problem) && v.problem.title);
    if (phase === "connected") {
      // Reachable: has an address on a network whose route is installed (or that the View doesn't list).
      const routes = safe(() => new Map(arr(v.networks).filter(obj).map((n) => [text(n.name), n.route])), new Map());
      const reachable = arr(v.containers).filter((c) => arr(obj(c) && c.addresses)
        .some((a) => obj(a) && text(a.ip) && [undefined, "installed"].includes(routes.get(text(a.network))))).length;
      const routed = [...routes.values()].filter((route) => route === "installed").length;
      if (reachable) return Format.plural(reachable, "container") + " reachable by IP";
      return "Routing " + Format.plural(routed, "network");
    }
    if (problemTitle) return problemTitle;
    if (phase === "connecting") return v.engine ? "Setting up the tunnel…" : "Looking for Docker…";
    if (phase === "error") return "Something went wrong";
    return v.want_connected ? "Not connected yet" : "Off — containers are not routed";
  }

  function renderProblem(v) {
    const problem = obj(v.problem);
    const box = $("problem");
    setHidden(box, !problem);
    let button = $("problem-action");
    const label = problem ? ACTION_LABELS[problem.action] : undefined;
    if (!label) {
      if (button) button.remove(); // the contract wants no button at all without an action
    } else {
      if (!button) {
        button = h("button", { id: "problem-action", type: "button", class: "push-button primary" });
        $("problem-body").appendChild(button);
      }
      setData(button, "action", problem.action);
      setText(button, label);
      setDisabled(button, state.busy.has(problem.action));
      button.classList.toggle("busy", button.disabled);
    }
    if (!problem) return;
    setData(box, "kind", text(problem.kind) || "other");
    setText($("problem-title"), text(problem.title) || "Dockroute needs attention");
    setText($("problem-detail"), text(problem.detail));
  }

  /** The first address that is really there: ports open against this one. */
  function firstIp(container) {
    const found = arr(obj(container) && container.addresses).find((a) => obj(a) && text(a.ip));
    return found ? text(found.ip) : "";
  }

  function renderContainers(v) {
    const containers = arr(v.containers).filter(obj).sort((a, b) => text(a.name).localeCompare(text(b.name)));
    const routeByNetwork = safe(() => new Map(arr(v.networks).filter(obj).map((n) => [text(n.name), text(n.route)])), new Map());
    const list = $("containers");
    reconcile(list, containers, (c, i) => text(c.id) || text(c.name) || "container-" + i,
      (c) => JSON.stringify([c, arr(c.addresses).map((a) => obj(a) && routeByNetwork.get(text(a.network)))]),
      (c) => containerRow(c, routeByNetwork));
    // Toggled in place rather than via the signature, so the "Copied" bubble animates and rows stay put.
    for (const button of list.querySelectorAll("button.ip")) {
      button.classList.toggle("copied", state.copiedIp !== null && button.dataset.ip === state.copiedIp);
    }
    setText($("containers-count"), containers.length ? String(containers.length) : "");
    const filter = $("container-filter");
    setHidden(filter, containers.length <= 6 && !filter.value);
    applyFilter();

    const empty = $("containers-empty");
    setHidden(empty, containers.length > 0);
    if (!containers.length) {
      const phase = phaseOf(v);
      const key = phase === "connected" ? "none" : "off";
      if (empty.dataset.state !== key) {
        empty.dataset.state = key;
        empty.replaceChildren(...(key === "none"
          ? ["No running containers on bridge networks — ", h("code", {}, "docker run"), " one."]
          : ["Containers show up here with their IPs once Dockroute is connected."]));
      }
    }
  }

  function containerRow(c, routeByNetwork) {
    const name = text(c.name) || text(c.id).slice(0, 12) || "unnamed";
    const ip = firstIp(c);
    const seenPorts = new Set(); // Docker lists a published port once per IP family
    const ports = arr(c.ports)
      .filter((p) => obj(p) && isNum(p.port))
      .map((p) => ({ port: p.port, protocol: text(p.protocol).toLowerCase() || "tcp" }))
      .sort((a, b) => a.port - b.port)
      .filter((p) => !seenPorts.has(p.port + p.protocol) && seenPorts.add(p.port + p.protocol));

    const portLinks = ports.map(({ port, protocol }) => {
      const web = protocol === "tcp" && ip;
      const url = web ? "http://" + (ip.includes(":") ? "[" + ip + "]" : ip) + ":" + port : null;
      return h("a", {
        class: "port", "data-port": port, "data-protocol": protocol, "data-focus": "port-" + port + protocol, href: url,
        title: web ? "Open " + url : protocol.toUpperCase() + " port — nothing to open in a browser",
        "aria-disabled": web ? null : "true",
      }, protocol === "tcp" ? String(port) : port + "/" + protocol);
    });

    const addresses = arr(c.addresses).filter((a) => obj(a) && text(a.ip)).map((a) => {
      const address = text(a.ip);
      const network = text(a.network);
      const route = routeByNetwork.get(network);
      const unreachable = route !== undefined && route !== "installed";
      const title = "Copy " + address + (unreachable ? " — its route is " + route + ", not reachable yet" : "");
      return h("span", { class: "address" },
        h("button", { type: "button", class: "ip mono" + (unreachable ? " unreachable" : ""), "data-ip": address, "data-focus": "ip-" + address, title }, address),
        network ? h("span", { class: "address-network" }, network) : null);
    });

    return h("li", { class: "container", "data-container": text(c.name) },
      h("div", { class: "container-head" },
        h("span", { class: "name", title: name }, name),
        portLinks.length ? h("span", { class: "ports" }, portLinks) : null),
      addresses.length
        ? h("div", { class: "addresses" }, addresses)
        : h("div", { class: "addresses muted" }, "No address on a routed network"));
  }

  function applyFilter() {
    const query = $("container-filter").value.trim().toLowerCase();
    for (const row of $("containers").children) {
      const haystack = (row.dataset.container + " " + row.textContent).toLowerCase();
      setHidden(row, !!query && !haystack.includes(query));
    }
  }

  function renderNetworks(v) {
    const networks = arr(v.networks).filter(obj);
    const list = $("networks");
    reconcile(list, networks, (n, i) => text(n.name) || text(n.id) || "network-" + i, (n) => JSON.stringify(n), networkRow);
    // While a toggle is in flight, what the user asked for wins over older snapshots (set in place so it slides).
    for (const row of list.children) {
      const toggle = row.querySelector(".network-toggle");
      const pending = state.pendingNetworks.get(row.dataset.network);
      const current = networks.find((n) => text(n.name) === row.dataset.network);
      const checked = pending !== undefined ? pending : !!current && current.enabled === true; // also reverts a failed toggle
      if (toggle && toggle.checked !== checked) toggle.checked = checked;
    }
    const routed = networks.filter((n) => n.route === "installed").length;
    setText($("networks-count"), networks.length ? routed + " of " + networks.length + " routed" : "");
    const empty = $("networks-empty");
    setHidden(empty, networks.length > 0);
    if (!networks.length && !empty.firstChild) {
      empty.append("No bridge networks yet — ", h("code", {}, "docker network create"), " one.");
    }
  }

  function networkRow(n) {
    const name = text(n.name);
    const route = text(n.route) || "unknown";
    const subnets = arr(n.subnets).map(text).filter(Boolean);
    const conflict = text(n.conflict);
    const toggle = h("input", {
      type: "checkbox", class: "switch network-toggle", "data-focus": "toggle", "aria-label": "Route " + name,
      title: n.checkable ? (n.enabled ? "Stop routing " : "Route ") + name : conflict || "This network can't be routed",
    });
    toggle.checked = n.enabled === true;
    toggle.disabled = !n.checkable;

    return h("li", { class: "network", "data-network": name, "data-route": route },
      h("div", { class: "network-main" },
        h("div", { class: "network-head" },
          h("span", { class: "name", title: name }, name || "unnamed"),
          h("span", { class: "route-state", "data-state": route }, route)),
        h("div", { class: "network-meta" },
          h("span", { class: "subnets mono" }, subnets.length ? subnets.join(", ") : "no subnet"),
          isNum(n.containers) ? h("span", { class: "network-containers" }, Format.plural(n.containers, "container")) : null),
        conflict ? h("p", { class: "conflict" }, conflict) : null),
      toggle);
  }

  function renderTunnel(v) {
    const tunnel = obj(v.tunnel);
    const session = tunnel ? obj(tunnel.session) : null;
    setHidden($("tunnel-details"), !tunnel);
    const empty = $("tunnel-empty");
    setHidden(empty, !!tunnel);
    setText(empty, v.want_connected ? "The tunnel comes up once Docker and the helper are ready." : "No tunnel — Connect to create one.");

    const t = tunnel || {};
    const pair = (v4, v6) => [text(v4) || text(v6) || "—", text(v4) && text(v6) ? text(v6) : ""];
    const [host, host6] = pair(t.host_v4, t.host_v6);
    const [guest, guest6] = pair(t.guest_v4, t.guest_v6);
    const fields = {
      "link-host": host, "link-host-v6": host6, "link-guest": guest, "link-guest-v6": guest6,
      interface: text(t.interface) || "—", mtu: isNum(t.mtu) ? "MTU " + t.mtu : "", listen: text(t.listen) || "—",
      "session-guest": session && text(session.guest) ? "↔ " + text(session.guest) : "",
      "session-id": (session && text(session.id)) || "—",
      engine: text(v.engine) || "not found", "helper-socket": text(v.helper_socket) || "—",
    };
    for (const [id, value] of Object.entries(fields)) setText($(id), value);
    setText($("tunnel-error"), text(t.error));
    setHidden($("tunnel-error"), !text(t.error));

    const alive = $("session-alive");
    const aliveState = !session ? "none" : session.alive === true ? "alive" : "down";
    setData(alive, "alive", aliveState);
    setText(alive, { none: "No session", alive: "Alive", down: "Not responding" }[aliveState]);
    tickAges();
  }

  /** Ages count on between snapshots so "2 s ago" doesn't freeze if the shell goes quiet. */
  function tickAges() {
    const tunnel = obj(state.view.tunnel);
    const session = tunnel ? obj(tunnel.session) : null;
    const elapsed = Math.max(0, Date.now() - state.receivedAt);
    const age = (ms) => (isNum(ms) ? Format.age(ms + elapsed) : "—");
    setText($("handshake-age"), session ? age(session.handshake_age_ms) : "—");
    setText($("last-seen"), session ? age(session.last_seen_ms) : "—");
  }

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
    const packets = (n) => (isNum(n) ? Format.plural(n, "packet") : "");
    setText($("tx-total"), Format.bytes(stats.tx_bytes));
    setText($("tx-packets"), packets(stats.tx_packets));
    setText($("rx-total"), Format.bytes(stats.rx_bytes));
    setText($("rx-packets"), packets(stats.rx_packets));
    setText($("handshakes"), Format.count(stats.handshakes));
  }

  function renderDrops(v) {
    const stats = obj(v.stats);
    const drops = Object.entries((stats && obj(stats.drops)) || {}).map(([name, count]) => [name, isNum(count) ? count : 0]);
    const sum = drops.reduce((acc, [, count]) => acc + count, 0);
    setText($("drops-total"), stats ? Format.count(sum) : "—");
    $("drops").classList.toggle("has-drops", sum > 0);
    reconcile($("drops-list"), drops, ([name]) => name, (entry) => JSON.stringify(entry), ([name, count]) =>
      h("li", { class: "drop" + (count > 0 ? " nonzero" : ""), "data-drop": name },
        h("span", { class: "drop-label" }, Format.label(name)),
        h("span", { class: "drop-count" }, Format.count(count))));
  }

  function renderSettings(v) {
    const autostart = $("autostart");
    autostart.checked = state.pendingAutostart !== null ? state.pendingAutostart : v.autostart === true;
    setDisabled(autostart, state.busy.has("set_autostart"));
    setText($("app-version"), text(v.app_version) ? "Dockroute " + text(v.app_version) : "Dockroute");
  }

  const RENDERERS = Object.entries({
    status: renderStatus, problem: renderProblem, containers: renderContainers, networks: renderNetworks,
    tunnel: renderTunnel, traffic: renderTraffic, drops: renderDrops, settings: renderSettings,
  });

  // ─────────────────────────────────────────── user actions (delegated: rows come and go)

  function wireEvents() {
    $("connect-button").addEventListener("click", () => run(state.view.want_connected === true ? "disconnect" : "connect"));
    $("problem").addEventListener("click", async (event) => {
      const button = event.target.closest("#problem-action");
      if (!button || button.disabled) return;
      const action = button.dataset.action;
      const result = await run(action);
      if (result.ok && action === "install_helper") toast(text(result.value) || "Helper installed", "success");
    });
    $("containers").addEventListener("click", (event) => {
      const ipButton = event.target.closest("button.ip");
      if (ipButton) return copyIp(ipButton.dataset.ip);
      const port = event.target.closest("a.port");
      if (!port) return;
      event.preventDefault(); // the shell opens the default browser; the webview must not navigate
      const row = port.closest("li.container");
      const container = row && arr(state.view.containers).find((c) => obj(c) && text(c.name) === row.dataset.container);
      const ip = firstIp(container);
      if (!ip || port.dataset.protocol !== "tcp") return;
      run("open_container_url", { ip, port: Number(port.dataset.port) });
    });
    $("networks").addEventListener("change", async (event) => {
      const toggle = event.target;
      if (!toggle.matches(".network-toggle")) return;
      const name = toggle.closest("li.network").dataset.network;
      const enabled = toggle.checked;
      state.pendingNetworks.set(name, enabled);
      const result = await run("set_network_enabled", { name, enabled });
      state.pendingNetworks.delete(name);
      // Success: patch our copy until the next snapshot says more; failure: the render reverts the switch.
      const network = arr(state.view.networks).find((n) => obj(n) && text(n.name) === name);
      if (result.ok && network) network.enabled = enabled;
      renderSafely();
    });
    $("autostart").addEventListener("change", async (event) => {
      const enabled = event.target.checked;
      state.pendingAutostart = enabled;
      const result = await run("set_autostart", { enabled });
      state.pendingAutostart = null;
      if (result.ok) state.view.autostart = enabled;
      renderSafely();
    });
    $("container-filter").addEventListener("input", applyFilter);
    $("toast").addEventListener("click", () => $("toast").classList.remove("visible"));
    document.addEventListener("keydown", (event) => event.key === "Escape" && $("toast").classList.remove("visible"));
    setInterval(() => {
      try { tickAges(); } catch (err) { console.error("dockroute: tick failed", err); }
    }, 1000);
  }

  async function copyIp(ip) {
    if (!ip) return;
    const result = await run("copy_text", { text: ip });
    if (!result.ok) return;
    state.copiedIp = ip;
    clearTimeout(state.copiedTimer);
    state.copiedTimer = setTimeout(() => ((state.copiedIp = null), renderSafely()), 1200);
    renderSafely();
    toast("Copied " + ip, "success");
  }

  // ─────────────────────────────────────────── demo mode (no Tauri: a browser preview)

  const clone = (v) => JSON.parse(JSON.stringify(v));

  function demoViews(kind) {
    const now = Date.now();
    const wave = (i, k) => Math.abs(Math.sin(i / 6 + k) * 0.6 + Math.sin(i / 2.3 + k * 3) * 0.4);
    const net = (name, subnets, containers, extra) => Object.assign(
      { id: name.length.toString(16) + "f1c2a9e", name, subnets, containers, enabled: true, route: "installed", conflict: null, checkable: true }, extra);
    const ctr = (name, addresses, ports) => ({
      id: "c0" + name, name, addresses: addresses.map(([network, ip]) => ({ network, ip })),
      ports: ports.map((p) => (typeof p === "number" ? { port: p, protocol: "tcp" } : p)),
    });
    const connected = {
      app_version: "0.1.0", phase: "connected", want_connected: true, problem: null,
      engine: "unix:///var/run/docker.sock", helper_socket: "/var/run/dockroute.sock",
      tunnel: {
        interface: "utun7", listen: "127.0.0.1:2511", host_v4: "198.18.170.1/24", guest_v4: "198.18.170.2",
        host_v6: "fd00::1/64", guest_v6: "fd00::2", mtu: 1400,
        session: { id: "3b8061cddbc537b6", guest: "192.168.65.3:48500", alive: true, handshake_age_ms: 1649, last_seen_ms: 831 },
      },
      networks: [
        net("mynet", ["172.20.0.0/16"], 2),
        net("shop_default", ["172.21.0.0/16", "fd12:3456:789a::/64"], 3),
        net("bridge", ["172.17.0.0/16"], 0, { enabled: false, route: "disabled" }),
        net("vpn_clash", ["10.8.0.0/16"], 1,
          { route: "conflict", checkable: false, conflict: "Route 10.8.0.0/16 conflicts with utun3 (10.8.0.0/14) — a VPN?" }),
      ],
      containers: [
        ctr("web", [["mynet", "172.20.0.2"]], [80, 443, 80]),
        ctr("db", [["mynet", "172.20.0.3"]], [5432]),
        ctr("shop-api-1", [["shop_default", "172.21.0.2"], ["shop_default", "fd12:3456:789a::2"]], [8080]),
        ctr("shop-redis-1", [["shop_default", "172.21.0.3"]], [6379]),
        ctr("shop-worker-1", [["shop_default", "172.21.0.4"]], []),
        ctr("dns", [["vpn_clash", "10.8.0.5"]], [{ port: 53, protocol: "udp" }]),
      ],
      stats: {
        tx_bytes: 48213377, rx_bytes: 1302443901, tx_packets: 402113, rx_packets: 951870, handshakes: 3,
        drops: { replay: 0, malformed: 2, unknown_session: 0, too_big: 0 },
      },
      throughput: Array.from({ length: 60 }, (_, i) =>
        ({ t_ms: now - (59 - i) * 1000, tx_bps: 180000 + 900000 * wave(i, 1), rx_bps: 600000 + 3600000 * wave(i, 0) })),
      autostart: false,
    };
    const down = { phase: "error", tunnel: null, stats: null, throughput: [] };
    if (kind === "error") {
      return Object.assign({}, connected, down, {
        networks: connected.networks.map((n) => Object.assign({}, n, { route: n.route === "installed" ? "pending" : n.route })),
        problem: { kind: "helper_not_installed", title: "The helper is not installed", action: "install_helper",
          detail: "Dockroute needs its privileged helper to create the tunnel and add routes. Installing it asks for your password once." },
      });
    }
    if (kind === "docker") {
      return Object.assign({}, connected, down, { phase: "connecting", engine: null, networks: [], containers: [],
        problem: { kind: "docker_not_running", title: "Docker is not running", action: "retry",
          detail: "Cannot reach the Docker engine at unix:///var/run/docker.sock: connection refused. Start Docker Desktop; Dockroute reconnects by itself." },
      });
    }
    return connected;
  }

  /** Commands change a local sample and "push" it back, so every control can be tried in a browser. */
  function startDemo() {
    const params = new URLSearchParams(location.search);
    const failing = params.has("fail"); // ?fail=1: every command rejects, to look at the error toast
    const healthy = demoViews("connected");
    const view = demoViews(params.get("demo") || "connected");
    const emit = () => setTimeout(() => render(clone(view)), 0);
    const later = (fn, ms) => setTimeout(() => (fn(), emit()), ms);
    const comeUp = () => later(() => Object.assign(view, clone(healthy),
      { networks: view.networks.length ? view.networks : healthy.networks, autostart: view.autostart, throughput: [] }), 900);

    const commands = {
      view: () => clone(view),
      connect: () => (Object.assign(view, { want_connected: true, phase: "connecting" }), view.problem || comeUp()),
      disconnect: () => Object.assign(view, { want_connected: false, phase: "disconnected", problem: null, tunnel: null, throughput: [] }),
      set_network_enabled({ name, enabled }) {
        const network = view.networks.find((n) => n.name === name);
        if (!network || !network.checkable) throw "Network " + name + " can't be routed";
        Object.assign(network, { enabled, route: enabled ? "pending" : "disabled" });
        if (enabled) later(() => (network.route = "installed"), 700);
      },
      set_autostart: ({ enabled }) => (view.autostart = enabled),
      install_helper: () => (Object.assign(view, { problem: null, phase: "connecting" }), comeUp(), "Installed dockroute-helper and started it."),
      retry: () => (Object.assign(view, { problem: null, phase: "connecting" }), comeUp()),
      copy_text: ({ text: value }) => navigator.clipboard && navigator.clipboard.writeText(value).catch(() => {}),
      open_container_url: ({ ip, port }) => console.info("dockroute demo: would open http://" + ip + ":" + port),
    };
    invokeImpl = (cmd, args) => new Promise((resolve, reject) => setTimeout(() => {
      try {
        if (!commands[cmd]) throw "Unknown command: " + cmd;
        if (failing && cmd !== "view") throw "Demo: " + cmd + " was refused (the ?fail flag is on)";
        const value = commands[cmd](args || {});
        emit();
        resolve(cmd === "view" || cmd === "install_helper" ? value : null); // the others return null
      } catch (err) {
        reject(errorText(err));
      }
    }, 150));

    // Live traffic and an ageing handshake, as the shell pushes them once a second.
    setInterval(() => {
      if (view.phase !== "connected" || !view.tunnel) return;
      const last = view.throughput[view.throughput.length - 1] || { tx_bps: 500000, rx_bps: 2000000 };
      const drift = (x) => Math.min(5e6, Math.max(2e4, x * (0.8 + Math.random() * 0.4)));
      view.throughput = view.throughput.concat({ t_ms: Date.now(), tx_bps: drift(last.tx_bps), rx_bps: drift(last.rx_bps) }).slice(-60);
      if (view.stats) Object.assign(view.stats, { rx_bytes: view.stats.rx_bytes + Math.round(last.rx_bps / 8), tx_bytes: view.stats.tx_bytes + Math.round(last.tx_bps / 8) });
      const session = view.tunnel.session;
      if (session) Object.assign(session, { last_seen_ms: Math.round(Math.random() * 400), handshake_age_ms: session.handshake_age_ms + 1000 });
      emit();
    }, 1000);
    render(clone(view));
  }

  // ─────────────────────────────────────────── boot

  async function boot() {
    wireEvents(); // nothing is rendered before the first snapshot: a guessed "disconnected" would flash
    const tauri = window.__TAURI__;
    if (!tauri || !tauri.core || typeof tauri.core.invoke !== "function") return startDemo();

    invokeImpl = (cmd, args) => tauri.core.invoke(cmd, args);
    let pushed = false; // once an event arrived, the initial snapshot may be older: ignore it
    try {
      // Listen before asking, so no change can slip between the snapshot and the subscription.
      await tauri.event.listen("view", (event) => ((pushed = true), render(event && event.payload)));
      // What the tray menu could not do (e.g. a refused toggle) is said here too.
      await tauri.event.listen("notice", (event) => toast(text(event && event.payload), "error"));
    } catch (err) {
      console.error("dockroute: can't listen for view events", err);
    }
    const load = async () => {
      try {
        const view = await invoke("view");
        if (!pushed) render(view);
      } catch (err) {
        console.error("dockroute: view failed", err);
        toast("Can't read Dockroute's state: " + errorText(err), "error");
        setText($("status-detail"), "Waiting for Dockroute…");
        if (!pushed) setTimeout(load, 3000);
      }
    };
    load();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
