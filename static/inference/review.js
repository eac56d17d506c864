/* Review pages: scroll-synced slice viewer (case review) and export progress polling. */
(function () {
  "use strict";
  const viewer = document.getElementById("review-viewer");
  if (viewer) {
    const slider = document.getElementById("review-z");
    const labelSelect = document.getElementById("review-label");
    const zLabel = document.getElementById("review-z-label");
    const images = viewer.querySelectorAll("img.review-img");
    const n = parseInt(viewer.dataset.slices, 10);
    function render() {
      const z = parseInt(slider.value, 10);
      zLabel.textContent = interpolate(gettext("%s of %s"), [z + 1, n]);
      images.forEach(function (img) {
        const params = new URLSearchParams({
          layer: img.dataset.layer,
          annotation: viewer.dataset.annotation,
          prediction: viewer.dataset.prediction,
        });
        if (img.dataset.layer === "difference" && labelSelect.value) {
          params.set("label", labelSelect.value);
        }
        img.src = viewer.dataset.sliceUrl + z + ".png?" + params.toString();
      });
    }
    // One wheel step moves every panel one slice: the three views stay on the same z.
    images.forEach(function (img) {
      img.addEventListener("wheel", function (event) {
        event.preventDefault();
        const z = parseInt(slider.value, 10) + (event.deltaY > 0 ? 1 : -1);
        slider.value = String(Math.max(0, Math.min(n - 1, z)));
        render();
      }, { passive: false });
    });
    slider.addEventListener("input", render);
    labelSelect.addEventListener("change", render);
    render();
  }

  // Export progress: REST poll every ~2 s with the websocket as the faster path (jobs.js).
  const table = document.getElementById("export-table");
  if (table && window.StrokeAidJobs) {
    const labels = window.StrokeAidJobs.statusLabels("job-status-labels");
    table.querySelectorAll("tr[data-export]").forEach(function (row) {
      window.StrokeAidJobs.watch({
        kind: "export",
        id: row.dataset.export,
        url: row.dataset.url,
        status: row.dataset.status,
        onUpdate: function (body) {
          if (!body.status) { return; }
          row.dataset.status = body.status;
          if (typeof body.progress === "number") { row.querySelector("progress").value = body.progress; }
          const cell = row.querySelector(".status");
          cell.textContent = labels[body.status] || body.status;
          if (body.error) {
            const error = document.createElement("span");
            error.className = "error";
            error.textContent = body.error;
            cell.append(": ", error);
          }
          if (body.download_url) {
            const link = document.createElement("a");
            link.href = body.download_url;
            link.textContent = gettext("Download");
            row.querySelector(".download").replaceChildren(link);
          }
        },
      });
    });
  }
})();
