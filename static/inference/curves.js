/* Training curves (loss and validation metrics per epoch) drawn with Chart.js. */
(function () {
  "use strict";
  const t = window.gettext || function (s) { return s; };
  function draw(canvas, curve) {
    if (!window.Chart) { return null; }
    const existing = canvas._chart;
    const data = {
      labels: curve.epochs,
      datasets: [
        { label: t("Training loss"), data: curve.loss, yAxisID: "loss", borderColor: "#666" },
        { label: t("Lesion Dice"), data: curve.dice, yAxisID: "score", borderColor: "#e53935", spanGaps: true },
        { label: t("Lesion-wise F1"), data: curve.lesion_f1, yAxisID: "score", borderColor: "#1e88e5", spanGaps: true },
        { label: t("Etiology macro-F1"), data: curve.macro_f1, yAxisID: "score", borderColor: "#43a047", spanGaps: true },
      ],
    };
    if (existing) { existing.data = data; existing.update("none"); return existing; }
    canvas._chart = new window.Chart(canvas, {
      type: "line",
      data: data,
      options: {
        animation: false,
        scales: {
          loss: { type: "linear", position: "left", title: { display: true, text: t("loss") } },
          score: { type: "linear", position: "right", min: 0, max: 1, grid: { drawOnChartArea: false } },
        },
      },
    });
    return canvas._chart;
  }
  window.StrokeAidCurves = { draw: draw };
})();
