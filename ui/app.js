/* Dockroute dashboard: renders the `View` snapshot the Rust shell pushes (the serialised
   `dockroute_controller::view::View`, controller/src/view/mod.rs) and wires the controls to the
   app's commands. The sections (render-*.js) each render inside their own try/catch, so one
   broken field cannot blank the page. Loads last: format.js, dom.js, the sections and
   bridge.js come first (index.html). */
(function (D) {
  "use strict";

  const { $, arr, obj, setText, errorText } = D.dom;
  const text = D.format.text;

  const state = {
    view: {}, receivedAt: Date.now(),
    busy: new Set(), // commands in flight, so their buttons can't be double-clicked
    pendingNetworks: new Map(), // name → enabled, while set_network_enabled is in flight
    pendingAutostart: null, pendingSleep: null, pendingHttps: null, copiedIp: null, copiedTimer: 0, toastTimer: 0,
    issued: null, // the teammate config added last (name, address, QR code), until another or a revoke
  };

  /** Runs a command; a rejection becomes an error toast. Resolves to { ok, value }. */
  async function run(cmd, args) {
    state.busy.add(cmd);
    renderSafely();
    try {
      return { ok: true, value: await D.bridge.invoke(cmd, args) };
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

  D.toast = toast;

  function render(view) {
    state.view = obj(view) || {};
    state.receivedAt = Date.now();
    renderSafely();
  }

  function renderSafely() {
    const v = state.view;
    for (const [name, renderSection] of D.sections) {
      try { renderSection(v, state); } catch (err) { console.error("dockroute: rendering " + name + " failed", err); }
    }
  }

  // ─────────────────────────────────────────── user actions (delegated: rows come and go)

  function wireEvents() {
    $("connect-button").addEventListener("click", () => run(state.view.want_connected === true ? "disconnect" : "connect"));
    $("problem").addEventListener("click", async (event) => {
      const button = event.target.closest("#problem-action");
      if (!button || button.disabled) return;
      const action = button.dataset.action;
      const result = await run(action);
      const installs = action === "install_helper" || action === "install_helper_with_password";
      if (result.ok && installs) toast(text(result.value) || "Helper installed", "success");
    });
    $("containers").addEventListener("click", (event) => {
      const ipButton = event.target.closest("button.ip");
      if (ipButton) return copyIp(ipButton.dataset.ip);
      const httpsLink = event.target.closest("a.https-link");
      if (httpsLink) {
        event.preventDefault(); // the shell opens the default browser, and only our own names
        return run("open_container_name", { name: httpsLink.dataset.name });
      }
      const nameButton = event.target.closest("button.dns-name");
      if (nameButton) return copyUrl(nameButton.dataset.url);
      const port = event.target.closest("a.port");
      if (!port) return;
      event.preventDefault(); // the shell opens the default browser; the webview must not navigate
      const row = port.closest("li.container");
      const container = row && arr(state.view.containers).find((c) => obj(c) && text(c.name) === row.dataset.container);
      const ip = D.containers.firstIp(container);
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
    $("networks").addEventListener("change", async (event) => {
      const box = event.target;
      if (!box.matches(".expose-toggle")) return;
      const name = box.closest("li.network").dataset.network;
      const result = await run("set_network_exposed", { name, exposed: box.checked });
      if (!result.ok) box.checked = !box.checked;
      else toast((box.checked ? "Teammates can reach " : "Teammates can no longer reach ") + name, "success");
    });
    $("share-add").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("teammate-name");
      const name = input.value.trim();
      if (!name) return;
      const result = await run("add_teammate", { name });
      if (!result.ok) return;
      state.issued = obj(result.value);
      input.value = "";
      renderSafely();
    });
    $("share-save").addEventListener("click", async () => {
      const issued = obj(state.issued);
      if (!issued) return;
      const result = await run("save_teammate_config", { name: text(issued.name) });
      if (result.ok) toast("Saved " + text(result.value), "success");
    });
    $("teammates").addEventListener("click", async (event) => {
      const button = event.target.closest("button.revoke");
      if (!button) return;
      const name = button.dataset.name;
      if (!window.confirm("Revoke " + name + "? Their WireGuard config stops working at once.")) return;
      const result = await run("revoke_teammate", { name });
      if (!result.ok) return;
      if (obj(state.issued) && text(state.issued.name) === name) state.issued = null;
      toast(name + " is cut off", "success");
    });
    $("autostart").addEventListener("change", async (event) => {
      const enabled = event.target.checked;
      state.pendingAutostart = enabled;
      const result = await run("set_autostart", { enabled });
      state.pendingAutostart = null;
      if (result.ok) state.view.autostart = enabled;
      renderSafely();
    });
    $("docker-sleep").addEventListener("change", async (event) => {
      const enabled = event.target.checked;
      state.pendingSleep = enabled;
      const result = await run("set_let_docker_sleep", { enabled });
      state.pendingSleep = null;
      if (result.ok) state.view.let_docker_sleep = enabled;
      renderSafely();
    });
    $("https-switch").addEventListener("change", async (event) => {
      const enabled = event.target.checked;
      state.pendingHttps = enabled;
      const result = await run("set_https", { enabled });
      state.pendingHttps = null;
      if (result.ok && obj(state.view.https)) state.view.https.on = enabled;
      renderSafely();
    });
    $("https-trust").addEventListener("click", async () => {
      const result = await run("trust_ca");
      if (result.ok) toast("The local CA is trusted: https:// names open without a warning", "success");
    });
    $("https-untrust").addEventListener("click", async () => {
      if (!window.confirm("Remove the local CA from the trust stores it was added to? Browsers will warn on https:// names again.")) return;
      const result = await run("untrust_ca");
      if (result.ok) toast("The local CA is no longer trusted", "success");
    });
    D.engines.wire(run);
    $("container-filter").addEventListener("input", D.containers.applyFilter);
    $("toast").addEventListener("click", () => $("toast").classList.remove("visible"));
    document.addEventListener("keydown", (event) => event.key === "Escape" && $("toast").classList.remove("visible"));
    setInterval(() => {
      try { D.tunnel.tickAges(state); } catch (err) { console.error("dockroute: tick failed", err); }
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

  async function copyUrl(url) {
    if (!url) return;
    const result = await run("copy_text", { text: url });
    if (result.ok) toast("Copied " + url, "success");
  }

  // ─────────────────────────────────────────── boot

  async function boot() {
    wireEvents(); // nothing is rendered before the first snapshot: a guessed "disconnected" would flash
    if (!D.bridge.available()) {
      setText($("status-detail"), "Not connected to Dockroute: this page runs inside the app.");
      return;
    }
    let pushed = false; // once an event arrived, the initial snapshot may be older: ignore it
    try {
      // Listen before asking, so no change can slip between the snapshot and the subscription.
      await D.bridge.listen("view", (view) => ((pushed = true), render(view)));
      // What the tray menu could not do (e.g. a refused toggle) is said here too.
      await D.bridge.listen("notice", (notice) => toast(text(notice), "error"));
    } catch (err) {
      console.error("dockroute: can't listen for view events", err);
    }
    const load = async () => {
      try {
        const view = await D.bridge.invoke("view");
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
})(window.Dockroute);
