/* Prediction panel (case page and /models/cases/<id>/predictions/): queued and running
   predictions update by themselves (see jobs.js); a finished one reloads the page, which
   renders its etiology, volumes, notes and links. */
(function () {
  "use strict";
  const table = document.getElementById("prediction-table");
  if (!table || !window.StrokeAidJobs) { return; }
  const labels = window.StrokeAidJobs.statusLabels("prediction-status-labels");
  table.querySelectorAll("tr[data-prediction]").forEach(function (row) {
    window.StrokeAidJobs.watch({
      kind: "prediction",
      id: row.dataset.prediction,
      url: row.dataset.url,
      status: row.dataset.status,
      onUpdate: function (state) {
        if (!state.status) { return; }
        row.dataset.status = state.status;
        const cell = row.querySelector(".status");
        cell.textContent = labels[state.status] || state.status;
        if (window.StrokeAidJobs.isActive(state.status) && typeof state.progress === "number") {
          const bar = document.createElement("progress");
          bar.max = 1;
          bar.value = state.progress;
          cell.append(" ", bar);
        }
      },
      onFinal: function () { window.location.reload(); },
    });
  });
})();
