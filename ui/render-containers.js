/* Dockroute dashboard: the containers, each with its addresses (click to copy), its DNS names
   (click to copy http://name/, or while the helper serves HTTPS an https://name/ link the app
   opens; a name two containers claim is marked) and exposed ports (click to open
   http://IP:port), the filter box once the list is long, and notes on clashing and skipped
   names. */
(function (D) {
  "use strict";

  const { $, arr, obj, h, setText, setHidden, reconcile, safe, phaseOf } = D.dom;
  const Format = D.format;
  const text = Format.text;

  /** The first address that is really there: ports open against this one. */
  function firstIp(container) {
    const found = arr(obj(container) && container.addresses).find((a) => obj(a) && text(a.ip));
    return found ? text(found.ip) : "";
  }

  function renderContainers(v, state) {
    const containers = arr(v.containers).filter(obj).sort((a, b) => text(a.name).localeCompare(text(b.name)));
    const routeByNetwork = safe(() => new Map(arr(v.networks).filter(obj).map((n) => [text(n.name), text(n.route)])), new Map());
    const https = safe(() => obj(v.https) !== null && v.https.serving === true, false);
    const list = $("containers");
    reconcile(list, containers, (c, i) => text(c.id) || text(c.name) || "container-" + i,
      (c) => JSON.stringify([c, https, arr(c.addresses).map((a) => obj(a) && routeByNetwork.get(text(a.network)))]),
      (c) => containerRow(c, routeByNetwork, https));
    // Toggled in place rather than via the signature, so the "Copied" bubble animates and rows stay put.
    for (const button of list.querySelectorAll("button.ip")) {
      button.classList.toggle("copied", state.copiedIp !== null && button.dataset.ip === state.copiedIp);
    }
    setText($("containers-count"), containers.length ? String(containers.length) : "");
    const filter = $("container-filter");
    setHidden(filter, containers.length <= 6 && !filter.value);
    applyFilter();

    renderDnsNotes(v);

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

  function containerRow(c, routeByNetwork, https) {
    const name = text(c.name) || text(c.id).slice(0, 12) || "unnamed";
    const ip = firstIp(c);
    const seenPorts = new Set(); // Docker lists a published port once per IP family
    const ports = arr(c.ports)
      .filter((p) => obj(p) && Format.isNum(p.port))
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

    const names = arr(c.names).filter((n) => obj(n) && text(n.name)).map((n) => {
      const dnsName = text(n.name);
      const clash = n.clash === true;
      const note = clash ? " — another container claims it too; it answers with both" : "";
      if (n.wildcard === true) return h("span", { class: "dns-name wildcard mono" + (clash ? " clash" : ""), title: "Any name below " + dnsName.slice(2) + note }, dnsName);
      if (https) {
        const link = "https://" + dnsName + "/";
        return h("a", { class: "dns-name https-link mono" + (clash ? " clash" : ""), href: link, "data-name": dnsName, "data-focus": "name-" + dnsName, title: "Open " + link + note }, "https://" + dnsName);
      }
      const url = "http://" + dnsName + "/";
      return h("button", { type: "button", class: "dns-name mono" + (clash ? " clash" : ""), "data-url": url, "data-focus": "name-" + dnsName, title: "Copy " + url + note }, dnsName);
    });

    return h("li", { class: "container", "data-container": text(c.name) },
      h("div", { class: "container-head" },
        h("span", { class: "name", title: name }, name),
        portLinks.length ? h("span", { class: "ports" }, portLinks) : null),
      addresses.length
        ? h("div", { class: "addresses" }, addresses)
        : h("div", { class: "addresses muted" }, "No address on a routed network"),
      names.length ? h("div", { class: "dns-names" }, names) : null);
  }

  /** One line per clashing name and per name DNS cannot carry. */
  function renderDnsNotes(v) {
    const dns = obj(v.dns);
    const clashes = dns ? arr(dns.clashes).filter((c) => obj(c) && text(c.name)) : [];
    const skipped = dns ? arr(dns.skipped).filter((s) => obj(s) && text(s.name)) : [];
    const list = $("dns-notes");
    const lines = [
      ...clashes.map((c) => ["clash", [h("span", { class: "mono" }, text(c.name)), " is claimed by " + arr(c.containers).map(text).join(", ") + ": it answers with all of them."]]),
      ...skipped.map((s) => ["skipped", [h("span", { class: "mono" }, text(s.name)), " (" + text(s.container) + ") has no DNS name: " + text(s.reason) + "."]]),
    ];
    reconcile(list, lines, (l, i) => l[0] + i, (l) => JSON.stringify(l[1].map((p) => (typeof p === "string" ? p : p.textContent))),
      ([kind, parts]) => h("li", { class: "dns-note " + kind }, parts));
    setHidden(list, !lines.length);
  }

  function applyFilter() {
    const query = $("container-filter").value.trim().toLowerCase();
    for (const row of $("containers").children) {
      const haystack = (row.dataset.container + " " + row.textContent).toLowerCase();
      setHidden(row, !!query && !haystack.includes(query));
    }
  }

  D.containers = { firstIp, applyFilter };
  D.sections.push(["containers", renderContainers]);
})(window.Dockroute);
