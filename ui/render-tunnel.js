/* Dockroute dashboard: the tunnel (handshake and last-packet ages, link addresses, interface,
   endpoint, session) and where the engine and the helper are. */
(function (D) {
  "use strict";

  const { $, arr, obj, setText, setHidden, setData } = D.dom;
  const Format = D.format;
  const text = Format.text;

  function renderTunnel(v, state) {
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
      interface: text(t.interface) || "—", mtu: Format.isNum(t.mtu) ? "MTU " + t.mtu : "", listen: text(t.listen) || "—",
      "session-guest": session && text(session.guest) ? "↔ " + text(session.guest) : "",
      // A fingerprint: the session id itself is never shown.
      "session-id": (session && text(session.fingerprint)) || "—",
      // The path the live session takes: UDP, or the TCP fallback when UDP is blocked.
      transport: session ? (text(session.transport) || "udp").toUpperCase() : "—",
      engine: text(v.engine) || "not found", "helper-socket": text(v.helper_socket) || "—",
    };
    // The helper's DNS server: where it answers, for which suffix, what the host's resolver was told.
    const dns = obj(v.dns);
    fields["dns-listen"] = !dns ? "off" : text(dns.listen) ? text(dns.listen) + " · ." + text(dns.suffix) : "not answering";
    fields["dns-resolver"] = dns ? [text(dns.resolver), ...arr(dns.problems).map(text)].filter(Boolean).join(" · ") : "";
    for (const [id, value] of Object.entries(fields)) setText($(id), value);
    setText($("tunnel-error"), text(t.error));
    setHidden($("tunnel-error"), !text(t.error));

    const alive = $("session-alive");
    const aliveState = !session ? "none" : session.alive === true ? "alive" : "down";
    setData(alive, "alive", aliveState);
    setText(alive, { none: "No session", alive: "Alive", down: "Not responding" }[aliveState]);
    tickAges(state);
  }

  /** Ages count on between snapshots so "2 s ago" doesn't freeze if the shell goes quiet. */
  function tickAges(state) {
    const tunnel = obj(state.view.tunnel);
    const session = tunnel ? obj(tunnel.session) : null;
    const elapsed = Math.max(0, Date.now() - state.receivedAt);
    const age = (ms) => (Format.isNum(ms) ? Format.age(ms + elapsed) : "—");
    setText($("handshake-age"), session ? age(session.handshake_age_ms) : "—");
    setText($("last-seen"), session ? age(session.last_seen_ms) : "—");
  }

  D.tunnel = { tickAges };
  D.sections.push(["tunnel", renderTunnel]);
})(window.Dockroute);
