/* Progress of background jobs (training runs, predictions, exports) on every progress page.
 *
 * The REST status is polled every ~2 s until the job reaches a final state; that poll is what
 * guarantees the page moves, because with the in-memory channel layer (the embedded default)
 * events sent by the worker process never reach the web process. The job's websocket
 * (ws/jobs/<kind>/<id>/) is only a faster path: a message there updates the page at once.
 *
 *   StrokeAidJobs.watch({kind: "export", id: 7, url: "/api/exports/7/", status: "queued",
 *                        onUpdate: function (state, source) {...}, onFinal: function (state) {...}});
 */
(function () {
  "use strict";
  const ACTIVE = ["queued", "running"];
  const INTERVAL_MS = 2000;

  function isActive(status) { return ACTIVE.indexOf(status) !== -1; }

  /* The translated label of a status, from a {status: label} map rendered with json_script. */
  function statusLabels(elementId) {
    const el = document.getElementById(elementId || "job-status-labels");
    try { return el ? JSON.parse(el.textContent) : {}; } catch { return {}; }
  }

  function watch(options) {
    let stopped = false;
    let timer = null;
    let socket = null;
    const interval = options.interval || INTERVAL_MS;
    const handle = { stop: stop };
    if (options.status && !isActive(options.status)) { return handle; }  // already final

    function stop() {
      stopped = true;
      clearTimeout(timer);
      if (socket) { try { socket.close(); } catch { /* already closed */ } }
    }
    function update(state, source) {
      if (stopped || !state) { return; }
      options.onUpdate(state, source);
      if (state.status && !isActive(state.status)) {
        if (source === "socket") {
          // Socket payloads are partial: one last REST read brings the complete final state.
          clearTimeout(timer);
          poll();
          return;
        }
        stop();
        if (options.onFinal) { options.onFinal(state); }
      }
    }
    function poll() {
      if (stopped) { return; }
      fetch(options.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) { update(body, "poll"); })
        .catch(function () { /* network hiccup: the next poll retries */ })
        .finally(function () {
          if (!stopped) { clearTimeout(timer); timer = setTimeout(poll, interval); }
        });
    }
    if (options.kind && options.id && "WebSocket" in window) {
      const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      try {
        socket = new WebSocket(scheme + window.location.host + "/ws/jobs/" + options.kind + "/" +
          options.id + "/");
        socket.onmessage = function (event) {
          let state = null;
          try { state = JSON.parse(event.data); } catch { return; }
          update(state, "socket");
        };
        socket.onerror = function () { /* the poll carries on */ };
      } catch { socket = null; }
    }
    poll();
    return handle;
  }

  window.StrokeAidJobs = { watch: watch, isActive: isActive, statusLabels: statusLabels };
})();
