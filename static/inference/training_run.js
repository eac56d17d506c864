/* Live training progress: websocket ws/jobs/training/<id>/ with a REST poll as fallback. */
(function () {
  "use strict";
  const t = window.gettext || function (s) { return s; };
  const script = document.getElementById("training-run-script");
  const runId = script.dataset.run;
  const apiUrl = script.dataset.api;
  const canvas = document.getElementById("run-curve");
  const curve = JSON.parse(document.getElementById("run-curve-data").textContent);
  const statusNames = {
    queued: t("Queued"), running: t("Running"), done: t("Done"),
    failed: t("Failed"), interrupted: t("Interrupted"),
  };
  function show(state) {
    if (state.status) { document.getElementById("run-status").textContent = statusNames[state.status] || state.status; }
    if (typeof state.progress === "number") {
      document.getElementById("run-progress").value = state.progress;
      document.getElementById("run-percent").textContent = Math.round(state.progress * 100) + " %";
    }
    if (state.error) { document.getElementById("run-error").textContent = state.error; }
    if (state.model) { document.getElementById("run-model").textContent = "#" + state.model; }
    const entry = state.history_entry;
    if (entry) {
      curve.epochs.push(entry.epoch);
      curve.loss.push(entry.train_loss);
      const m = entry.metrics || {};
      curve.dice.push(m.dice_mean ?? null);
      curve.lesion_f1.push(m.lesion_f1 ?? null);
      curve.macro_f1.push(m.case_macro_f1 ?? null);
      window.StrokeAidCurves.draw(canvas, curve);
    }
  }
  function poll() {
    fetch(apiUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (run) {
      show(run);
      if (run.history) {
        curve.epochs = run.history.map(function (h) { return h.epoch; });
        curve.loss = run.history.map(function (h) { return h.train_loss; });
        curve.dice = run.history.map(function (h) { return (h.metrics || {}).dice_mean ?? null; });
        curve.lesion_f1 = run.history.map(function (h) { return (h.metrics || {}).lesion_f1 ?? null; });
        curve.macro_f1 = run.history.map(function (h) { return (h.metrics || {}).case_macro_f1 ?? null; });
        window.StrokeAidCurves.draw(canvas, curve);
      }
      if (run.status === "queued" || run.status === "running") { setTimeout(poll, 5000); }
    }).catch(function () { setTimeout(poll, 10000); });
  }
  window.StrokeAidCurves.draw(canvas, curve);
  const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  try {
    const socket = new WebSocket(scheme + window.location.host + "/ws/jobs/training/" + runId + "/");
    socket.onmessage = function (event) { show(JSON.parse(event.data)); };
    socket.onclose = function () { poll(); };
  } catch (e) { poll(); }
})();
