/* Review pages: scroll-synced slice viewer (case review) and export progress polling. */
(function () {
  "use strict";
  const viewer = document.getElementById("review-viewer");
  if (viewer) {
    const slider = document.getElementById("review-z");
    const labelSelect = document.getElementById("review-label");
    const zLabel = document.getElementById("review-z-label");
    const wlLabel = document.getElementById("review-wl-label");
    const images = Array.from(viewer.querySelectorAll("img.review-img"));
    const n = parseInt(viewer.dataset.slices, 10);
    const lesions = (viewer.dataset.lesions || "").split(",").filter(Boolean).map(Number);
    const initial = { wc: parseFloat(viewer.dataset.wc), ww: parseFloat(viewer.dataset.ww) };
    // One view for the three panels: zoom, pan and window/level stay in step.
    const view = { scale: 1, x: 0, y: 0, wc: initial.wc, ww: initial.ww };
    let timer = null;

    function fmt(v) { const a = Math.abs(v); return a >= 100 ? String(Math.round(v)) : a >= 1 ? v.toFixed(1) : v.toPrecision(3); }

    function render() {
      const z = parseInt(slider.value, 10);
      zLabel.textContent = interpolate(gettext("%s of %s"), [z + 1, n]) +
        (lesions.includes(z) ? " · " + gettext("lesion") : "");
      wlLabel.textContent = interpolate(gettext("W %(w)s  L %(c)s"), { w: fmt(view.ww), c: fmt(view.wc) }, true);
      images.forEach(function (img) {
        const params = new URLSearchParams({
          layer: img.dataset.layer,
          annotation: viewer.dataset.annotation,
          prediction: viewer.dataset.prediction,
          wc: String(view.wc),
          ww: String(view.ww),
        });
        if (img.dataset.layer === "difference" && labelSelect.value) {
          params.set("label", labelSelect.value);
        }
        img.src = viewer.dataset.sliceUrl + z + ".png?" + params.toString();
      });
      viewer.dataset.z = String(z);
    }
    function place() {
      images.forEach(function (img) {
        // The transform itself is in app.css (.review-img): only the numbers change here.
        img.style.setProperty("--pan-x", String(view.x));
        img.style.setProperty("--pan-y", String(view.y));
        img.style.setProperty("--zoom", String(view.scale));
      });
    }
    function renderSoon() { clearTimeout(timer); timer = setTimeout(render, 120); }
    function go(z) { slider.value = String(Math.max(0, Math.min(n - 1, z))); render(); }
    function jump(step) {
      const z = parseInt(slider.value, 10);
      const next = step > 0 ? lesions.find((v) => v > z) : lesions.slice().reverse().find((v) => v < z);
      if (next !== undefined) go(next);
    }
    function zoom(f) { view.scale = Math.max(1, Math.min(8, view.scale * f)); if (view.scale === 1) { view.x = 0; view.y = 0; } place(); }
    function reset() { Object.assign(view, { scale: 1, x: 0, y: 0, wc: initial.wc, ww: initial.ww }); place(); render(); }

    images.forEach(function (img) {
      // One wheel step moves every panel one slice: the three views stay on the same z.
      img.addEventListener("wheel", function (event) {
        event.preventDefault();
        go(parseInt(slider.value, 10) + (event.deltaY > 0 ? 1 : -1));
      }, { passive: false });
      img.addEventListener("contextmenu", (e) => e.preventDefault());
      img.draggable = false;
      img.addEventListener("mousedown", function (event) {
        event.preventDefault();
        const start = { x: event.clientX, y: event.clientY, view: Object.assign({}, view) };
        const windowing = event.button === 2;
        function move(e) {
          const dx = e.clientX - start.x, dy = e.clientY - start.y;
          if (windowing) {
            const step = Math.max(start.view.ww, 1e-6) / 300;
            view.ww = Math.max(step, start.view.ww + dx * step);
            view.wc = start.view.wc + dy * step;
            wlLabel.textContent = interpolate(gettext("W %(w)s  L %(c)s"), { w: fmt(view.ww), c: fmt(view.wc) }, true);
            renderSoon();
          } else if (view.scale > 1) {
            view.x = start.view.x + dx; view.y = start.view.y + dy; place();
          }
        }
        function up() { document.removeEventListener("mousemove", move); document.removeEventListener("mouseup", up); }
        document.addEventListener("mousemove", move);
        document.addEventListener("mouseup", up);
      });
    });
    document.addEventListener("keydown", function (e) {
      const tag = (e.target.tagName || "").toLowerCase();
      if (tag === "input" && e.target.type !== "range" || tag === "textarea" || tag === "select") return;
      const k = e.key.toLowerCase();
      if (k === "n") { e.preventDefault(); jump(e.shiftKey ? -1 : 1); }
      else if (e.key === "+" || e.key === "=") zoom(1.25);
      else if (e.key === "-") zoom(0.8);
      else if (k === "r") reset();
    });
    document.getElementById("review-lesion-prev").addEventListener("click", () => jump(-1));
    document.getElementById("review-lesion-next").addEventListener("click", () => jump(1));
    document.getElementById("review-zoom-in").addEventListener("click", () => zoom(1.25));
    document.getElementById("review-zoom-out").addEventListener("click", () => zoom(0.8));
    document.getElementById("review-reset").addEventListener("click", reset);
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
