/* Browser preview of the dashboard, without the app: open ui/index.html?preview=NAME (file://
   works), NAME one of the Views in views.js: connected, conflict, helper_missing,
   docker_missing, disconnected, orbstack; add &fail=1 to make every command fail (the error toast).
   views.js is generated from the Rust `View` by controller/tests/ui_fixture.rs, so what the
   preview shows cannot drift from what the app sends.
   It stands in for Tauri (window.__TAURI__): commands change a local copy and push it back as
   the app would. Inside the app, or without ?preview, it does nothing and loads nothing. */
(function () {
  "use strict";

  const params = new URLSearchParams(location.search);
  if (window.__TAURI__ || !params.has("preview")) return;

  const clone = (v) => JSON.parse(JSON.stringify(v));
  const listeners = { view: [], notice: [] };
  let view = null;
  let healthy = null;
  const failing = params.has("fail");

  // The fixture's samples are from a fixed time: move them to end now, so the chart's last
  // minute holds them and the live ones continue them.
  function rebased(v) {
    const samples = Array.isArray(v.throughput) ? v.throughput : [];
    const shift = samples.length ? Date.now() - samples[samples.length - 1].t_ms : 0;
    return Object.assign(v, { throughput: samples.map((s) => Object.assign(s, { t_ms: s.t_ms + shift })) });
  }

  const ready = new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "preview/views.js";
    script.onload = () => {
      const views = window.DockroutePreviewViews || {};
      const name = params.get("preview") || "connected";
      if (!views[name]) console.warn("dockroute preview: no view " + name + "; have " + Object.keys(views).join(", "));
      view = rebased(clone(views[name] || views.connected));
      healthy = rebased(clone(views.connected));
      resolve();
    };
    script.onerror = () => reject("preview/views.js did not load");
    document.head.appendChild(script);
  });

  const emit = () => setTimeout(() => listeners.view.forEach((h) => h({ payload: clone(view) })), 0);
  const later = (fn, ms) => setTimeout(() => (fn(), emit()), ms);
  const comeUp = () => later(() => Object.assign(view, clone(healthy),
    { networks: view.networks.length ? view.networks : healthy.networks, autostart: view.autostart,
      engines: view.engines && view.engines.length ? view.engines : healthy.engines }), 900);

  const commands = {
    view: () => clone(view),
    connect: () => (Object.assign(view, { want_connected: true, phase: "connecting" }), view.problem || comeUp()),
    // As the app's Disconnect: no tunnel, no routes, nothing listed.
    disconnect: () => Object.assign(view, { want_connected: false, phase: "disconnected", problem: null, tunnel: null,
      networks: [], containers: [], stats: null, throughput: [] }),
    set_network_enabled({ name, enabled }) {
      const network = view.networks.find((n) => n.name === name);
      if (!network || !network.checkable) throw "Network " + name + " can't be routed";
      Object.assign(network, { enabled, route: enabled ? "pending" : "disabled" });
      if (enabled) later(() => (network.route = "installed"), 700);
    },
    set_autostart: ({ enabled }) => (view.autostart = enabled),
    // As the app: the picked engine is followed; one that needs Dockroute comes up like a connect.
    set_engine({ id }) {
      const engine = (view.engines || []).find((e) => e.id === id);
      if (!engine) throw "no engine at " + id;
      view.engines.forEach((e) => (e.followed = e.id === id));
      if (engine.kind !== "orb_stack") Object.assign(view, { problem: null, phase: "connecting" }), comeUp();
    },
    install_helper: () => (Object.assign(view, { problem: null, phase: "connecting" }), comeUp(), "Installed dockroute-helper and started it."),
    install_helper_with_password: () => (Object.assign(view, { problem: null, phase: "connecting" }), comeUp(),
      "Helper installed with the administrator's password: it runs as a system service now."),
    retry: () => (Object.assign(view, { problem: null, phase: "connecting" }), comeUp()),
    copy_text: ({ text }) => navigator.clipboard && navigator.clipboard.writeText(text).catch(() => {}),
    open_container_url: ({ ip, port }) => console.info("dockroute preview: would open http://" + ip + ":" + port),
    open_container_name: ({ name }) => console.info("dockroute preview: would open https://" + name + "/"),
    set_https({ enabled }) {
      if (!view.https) throw "Not connected";
      Object.assign(view.https, { on: enabled, serving: false, summary: enabled ? "Turning on…" : "Off: switched off here" });
      if (enabled) later(() => Object.assign(view.https, clone(healthy.https)), 700);
    },
    trust_ca() {
      if (!view.https || !view.https.ca) throw "The helper has not reported a local CA";
      view.https.ca.trusted_in = ["macOS login keychain"];
    },
    untrust_ca() {
      if (!view.https || !view.https.ca) throw "The helper has not reported a local CA";
      view.https.ca.trusted_in = [];
    },
  };

  window.__TAURI__ = {
    core: {
      invoke: (cmd, args) => ready.then(() => new Promise((resolve, reject) => setTimeout(() => {
        try {
          if (!commands[cmd]) throw "Unknown command: " + cmd;
          if (failing && cmd !== "view") throw "Preview: " + cmd + " was refused (the fail flag is on)";
          const value = commands[cmd](args || {});
          emit();
          const answers = cmd === "view" || cmd === "install_helper" || cmd === "install_helper_with_password";
          resolve(answers ? value : null); // the others return null
        } catch (err) {
          reject(String(err));
        }
      }, 150))),
    },
    event: {
      listen: (name, handler) => ready.then(() => (listeners[name] = listeners[name] || []).push(handler)),
    },
  };

  // Live traffic and an ageing handshake, as the app pushes them once a second.
  setInterval(() => {
    if (!view || view.phase !== "connected" || !view.tunnel) return;
    const last = view.throughput[view.throughput.length - 1] || { tx_bps: 500000, rx_bps: 2000000 };
    const drift = (x) => Math.min(5e6, Math.max(2e4, x * (0.8 + Math.random() * 0.4)));
    view.throughput = view.throughput.concat({ t_ms: Date.now(), tx_bps: drift(last.tx_bps), rx_bps: drift(last.rx_bps) }).slice(-60);
    if (view.stats) Object.assign(view.stats, { rx_bytes: view.stats.rx_bytes + Math.round(last.rx_bps / 8), tx_bytes: view.stats.tx_bytes + Math.round(last.tx_bps / 8) });
    const session = view.tunnel.session;
    if (session) Object.assign(session, { last_seen_ms: Math.round(Math.random() * 400), handshake_age_ms: session.handshake_age_ms + 1000 });
    emit();
  }, 1000);
})();
