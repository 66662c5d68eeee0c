/* Dockroute dashboard: the Docker engines found (Docker Desktop, Colima, OrbStack, …), the one
   Dockroute follows marked, a Follow button on each other one; and the followed engine's facts
   in the Tunnel section (name and version, API version, how the guest reaches the host, the
   guest's firewall backend), where someone debugging a broken setup looks. */
(function (D) {
  "use strict";

  const { $, arr, obj, h, setText, setHidden, reconcile } = D.dom;
  const text = D.format.text;

  function renderEngines(v, state) {
    const engines = arr(v.engines).filter(obj);
    const list = $("engines");
    reconcile(list, engines, (e, i) => text(e.id) || "engine-" + i,
      (e) => JSON.stringify(e) + (state.busy.has("set_engine") ? "busy" : ""), (e) => engineRow(e, state));
    const followed = engines.find((e) => e.followed === true);
    setText($("engines-count"), engines.length > 1 ? engines.length + " found" : "");
    const empty = $("engines-empty");
    setHidden(empty, engines.length > 0);
    setText(empty, v.want_connected ? "Looking for Docker engines…" : "Connect to look for Docker engines.");
    setHidden($("engines-section"), engines.length === 0 && !v.want_connected);
    const r = obj(v.runtime);
    const fields = {
      "engine-kind": r ? [text(r.engine), text(r.engine_version)].filter(Boolean).join(" ") : followed ? text(followed.name) : "—",
      "api-version": r && text(r.api_version) ? "API " + text(r.api_version) : "",
      "host-name": r ? text(r.host_name) || "—" : "—",
      firewall: r ? text(r.firewall) || "not reported yet" : "—",
    };
    for (const [id, value] of Object.entries(fields)) setText($(id), value);
  }

  function engineRow(e) {
    const id = text(e.id);
    const version = text(e.version);
    const note = text(e.note);
    const followed = e.followed === true;
    const follow = followed
      ? h("span", { class: "engine-followed" }, "Followed")
      : h("button", { type: "button", class: "push-button follow-engine", "data-engine": id }, "Follow");
    return h("li", { class: "engine", "data-engine": id, "data-followed": followed ? "yes" : "no",
      "data-kind": text(e.kind) || "unknown", "data-reachable": e.reachable === true ? "yes" : "no" },
      h("div", { class: "network-main" },
        h("div", { class: "network-head" },
          h("span", { class: "name engine-name" }, (text(e.name) || "engine") + (version ? " " + version : ""))),
        h("div", { class: "network-meta" },
          h("span", { class: "mono selectable" }, id),
          h("span", {}, text(e.source))),
        note ? h("p", { class: "conflict engine-note" }, note) : null),
      follow);
  }

  function wire(run) {
    $("engines").addEventListener("click", async (event) => {
      const button = event.target.closest("button.follow-engine");
      if (!button || button.disabled) return;
      button.disabled = true;
      const result = await run("set_engine", { id: button.dataset.engine });
      if (result.ok) D.toast("Dockroute follows " + button.closest("li.engine").querySelector(".engine-name").textContent, "success");
    });
  }

  D.engines = { wire };
  D.sections.push(["engines", renderEngines]);
})(window.Dockroute);
