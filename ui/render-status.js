/* Dockroute dashboard: the header (phase, one sentence, Connect/Disconnect), the problem box
   with its action button, and the settings at the foot of the page. */
(function (D) {
  "use strict";

  const { $, arr, obj, h, setText, setHidden, setDisabled, setData, safe, phaseOf } = D.dom;
  const Format = D.format;
  const text = Format.text;
  const ACTION_LABELS = {
    install_helper: "Install helper…",
    install_helper_with_password: "Install with administrator password…",
    retry: "Retry",
    open_login_items: "Open Login Items",
  };

  function renderStatus(v, state) {
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
    if (phase === "idle") return "Idle: no containers — the first one you start wakes the tunnel";
    if (phase === "connecting") return v.engine ? "Setting up the tunnel…" : "Looking for Docker…";
    if (phase === "error") return "Something went wrong";
    return v.want_connected ? "Not connected yet" : "Off — containers are not routed";
  }

  function renderProblem(v, state) {
    const problem = obj(v.problem);
    const box = $("problem");
    setHidden(box, !problem);
    let button = $("problem-action");
    const label = problem ? ACTION_LABELS[problem.action] : undefined;
    if (!label) {
      if (button) button.remove(); // no button at all without an action
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

  function renderSettings(v, state) {
    const autostart = $("autostart");
    autostart.checked = state.pendingAutostart !== null ? state.pendingAutostart : v.autostart === true;
    setDisabled(autostart, state.busy.has("set_autostart"));
    const sleep = $("docker-sleep");
    sleep.checked = state.pendingSleep !== null ? state.pendingSleep : v.let_docker_sleep === true;
    setDisabled(sleep, state.busy.has("set_let_docker_sleep"));
    setText($("app-version"), text(v.app_version) ? "Dockroute " + text(v.app_version) : "Dockroute");
  }

  D.sections.push(["status", renderStatus], ["problem", renderProblem], ["settings", renderSettings]);
})(window.Dockroute);
