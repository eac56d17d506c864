/* Live training progress: REST poll every ~2 s until the run is final, websocket
   ws/jobs/training/<id>/ as the faster path (see jobs.js). */
(function () {
  "use strict";
  const script = document.getElementById("training-run-script");
  const canvas = document.getElementById("run-curve");
  const curve = JSON.parse(document.getElementById("run-curve-data").textContent);
  const statusNames = window.StrokeAidJobs.statusLabels("job-status-labels");
  function setCurve(history) {
    curve.epochs = history.map(function (h) { return h.epoch; });
    curve.loss = history.map(function (h) { return h.train_loss; });
    curve.dice = history.map(function (h) { return (h.metrics || {}).dice_mean ?? null; });
    curve.lesion_f1 = history.map(function (h) { return (h.metrics || {}).lesion_f1 ?? null; });
    curve.macro_f1 = history.map(function (h) { return (h.metrics || {}).case_macro_f1 ?? null; });
  }
  function show(state) {
    if (state.status) {
      const el = document.getElementById("run-status");
      el.textContent = statusNames[state.status] || state.status;
      el.dataset.status = state.status;
    }
    if (typeof state.progress === "number") {
      document.getElementById("run-progress").value = state.progress;
      document.getElementById("run-percent").textContent = Math.round(state.progress * 100) + " %";
    }
    if (state.error) {
      const cell = document.getElementById("run-error");
      cell.textContent = state.error;
      cell.hidden = false;
      document.getElementById("run-error-label").hidden = false;
    }
    if (state.best_epoch) { document.getElementById("run-best").textContent = state.best_epoch; }
    if (state.model) { document.getElementById("run-model").textContent = "#" + state.model; }
    if (Array.isArray(state.history)) {
      setCurve(state.history);
      window.StrokeAidCurves.draw(canvas, curve);
    } else if (state.history_entry && curve.epochs.indexOf(state.history_entry.epoch) === -1) {
      const entry = state.history_entry;
      const m = entry.metrics || {};
      curve.epochs.push(entry.epoch);
      curve.loss.push(entry.train_loss);
      curve.dice.push(m.dice_mean ?? null);
      curve.lesion_f1.push(m.lesion_f1 ?? null);
      curve.macro_f1.push(m.case_macro_f1 ?? null);
      window.StrokeAidCurves.draw(canvas, curve);
    }
  }
  window.StrokeAidCurves.draw(canvas, curve);
  window.StrokeAidJobs.watch({
    kind: "training",
    id: script.dataset.run,
    url: script.dataset.api,
    status: script.dataset.status,
    onUpdate: show,
    // The log and the model link are rendered server-side: reload once the run is over.
    onFinal: function () { window.location.reload(); },
  });
})();
