/* Dockroute dashboard: the one way to the app. Commands go through Tauri's `invoke`; the app
   pushes the `view` event (a new View) and `notice` (something the tray menu could not do).
   Outside the app there is no `window.__TAURI__`: commands then fail with a message. */
(function (D) {
  "use strict";

  const tauri = () => {
    const t = window.__TAURI__;
    return t && t.core && typeof t.core.invoke === "function" ? t : null;
  };

  D.bridge = {
    /** True inside the app (or a stand-in for it, such as preview/preview.js). */
    available: () => tauri() !== null,

    /** Runs an app command; always a Promise, whatever the stand-in throws. */
    invoke(cmd, args) {
      const t = tauri();
      if (!t) return Promise.reject("Not connected to Dockroute");
      try { return Promise.resolve(t.core.invoke(cmd, args)); } catch (err) { return Promise.reject(err); }
    },

    /** Calls handler(payload) for each `name` event; resolves once subscribed. */
    async listen(name, handler) {
      const t = tauri();
      if (!t) throw new Error("Not connected to Dockroute");
      await t.event.listen(name, (event) => handler(event && event.payload));
    },
  };
})(window.Dockroute);
