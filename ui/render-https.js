/* Dockroute dashboard: the HTTPS section. The switch (the helper serves container names over
   HTTPS on port 443 of the link address, where its config allows), the local CA's status (id,
   expiry, what it may sign in words, where it is trusted) and Trust / Remove (macOS asks for
   the password; on Linux the helper does it if this user may). View field: `https` (the
   controller's HttpsView); the containers' names turn into https:// links while it serves. */
(function (D) {
  "use strict";

  const { $, arr, obj, setText, setHidden, setDisabled } = D.dom;
  const text = D.format.text;

  function renderHttps(v, state) {
    const https = obj(v.https);
    const off = $("https-off");
    setHidden($("https-body"), !https);
    setHidden(off, !!https);
    if (!https) setText(off, "HTTPS for container names shows here once Dockroute is connected.");
    if (!https) return;

    const toggle = $("https-switch");
    const want = state.pendingHttps !== null ? state.pendingHttps : https.on === true;
    if (toggle.checked !== want) toggle.checked = want;
    setDisabled(toggle, https.allowed !== true || state.pendingHttps !== null);
    setText($("https-aside"), https.serving === true ? "on " + text(https.listen) : "off");
    setText($("https-summary"), text(https.summary));
    const problems = arr(https.problems).map(text).filter(Boolean);
    setText($("https-problems"), problems.join("; "));
    setHidden($("https-problems"), !problems.length);

    const ca = obj(https.ca);
    setHidden($("https-ca"), !ca);
    setHidden($("https-actions"), !ca);
    if (!ca) return;
    const trustedIn = arr(ca.trusted_in).map(text).filter(Boolean);
    const fields = {
      "https-ca-id": text(ca.id) || "—", "https-ca-path": text(ca.path), "https-ca-expires": text(ca.expires) || "—",
      "https-ca-constraints": text(ca.constraints) || "—",
      "https-ca-trusted": trustedIn.length ? trustedIn.join(", ") : "Not trusted yet: browsers will warn",
    };
    for (const [id, value] of Object.entries(fields)) setText($(id), value);
    $("https-ca").dataset.trusted = trustedIn.length ? "yes" : "no";
    const busy = state.busy.has("trust_ca") || state.busy.has("untrust_ca");
    setDisabled($("https-trust"), busy);
    setDisabled($("https-untrust"), busy || !trustedIn.length);
  }

  D.sections.push(["https", renderHttps]);
})(window.Dockroute);
