/* Dockroute dashboard: the bridge networks with their route state and a switch each; a network
   whose subnet another route owns says so and cannot be switched on, and one on public address
   space says it is skipped and which `route` line would route it. */
(function (D) {
  "use strict";

  const { $, arr, obj, h, setText, setHidden, reconcile } = D.dom;
  const Format = D.format;
  const text = Format.text;

  function renderNetworks(v, state) {
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
    const skipped = text(n.skipped);
    const toggle = h("input", {
      type: "checkbox", class: "switch network-toggle", "data-focus": "toggle", "aria-label": "Route " + name,
      title: n.checkable ? (n.enabled ? "Stop routing " : "Route ") + name : conflict || skipped || "This network can't be routed",
    });
    toggle.checked = n.enabled === true;
    toggle.disabled = !n.checkable;

    const expose = h("label", {
      class: "expose", title: n.exposed_by_config ? "Exposed by the helper's config file (route … expose)"
        : (n.exposed ? "Stop sharing " : "Share ") + name + " with teammates",
    }, h("input", { type: "checkbox", class: "expose-toggle", "aria-label": "Share " + name + " with teammates" }), "Shared");
    const exposeBox = expose.firstChild;
    exposeBox.checked = n.exposed === true;
    exposeBox.disabled = n.exposed_by_config === true;

    return h("li", { class: "network", "data-network": name, "data-route": route, "data-exposed": n.exposed ? "yes" : "no" },
      h("div", { class: "network-main" },
        h("div", { class: "network-head" },
          h("span", { class: "name", title: name }, name || "unnamed"),
          h("span", { class: "route-state", "data-state": route }, route)),
        h("div", { class: "network-meta" },
          h("span", { class: "subnets mono" }, subnets.length ? subnets.join(", ") : "no subnet"),
          Format.isNum(n.containers) ? h("span", { class: "network-containers" }, Format.plural(n.containers, "container")) : null),
        conflict ? h("p", { class: "conflict" }, conflict) : null,
        skipped ? h("p", { class: "conflict skipped" }, skipped) : null),
      expose,
      toggle);
  }

  D.sections.push(["networks", renderNetworks]);
})(window.Dockroute);
