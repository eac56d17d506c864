/* Upload page: drag and drop, XHR upload progress, then job progress (polling + websocket). */
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  var t = window.gettext || function (s) { return s; };
  var fmt = window.interpolate || function (s) { return s; };
  var input = document.getElementById("file-input");
  var zone = document.getElementById("dropzone");
  var kind = document.getElementById("kind-select");
  var button = document.getElementById("upload-button");
  var statusBox = document.getElementById("upload-status");
  var phase = document.getElementById("upload-phase");
  var bar = document.querySelector("#transfer-progress > span");
  var errorBox = document.getElementById("upload-error");
  var resultList = document.getElementById("upload-result");
  var done = document.getElementById("upload-done");
  var summary = document.getElementById("file-summary");
  var maxBytes = parseInt(form.dataset.maxBytes, 10);
  var maxFiles = parseInt(form.dataset.maxFiles, 10);
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var chosen = [];

  function setFiles(list) {
    chosen = Array.prototype.slice.call(list);
    var total = chosen.reduce(function (acc, f) { return acc + f.size; }, 0);
    summary.textContent = chosen.length
      ? fmt(t("%s file(s), %s MB"), [chosen.length, (total / 1048576).toFixed(1)])
      : "";
  }
  function setProgress(fraction) { bar.style.width = Math.round(fraction * 100) + "%"; }
  function showError(message, extra) {
    var where = extra && extra.file ? " (" + extra.file + (extra.entry ? ": " + extra.entry : "") + ")" : "";
    errorBox.textContent = message + where;
    phase.textContent = t("Upload failed. Nothing was stored.");
    button.disabled = false;
  }
  function showSeries(series, skipped) {
    resultList.textContent = "";
    (series || []).forEach(function (s) {
      var li = document.createElement("li");
      li.textContent = s.kind + " · " + s.shape.join("×") + (s.description ? " · " + s.description : "") +
        (s.quarantined ? " · " + t("quarantined") + ": " + s.quarantine_reason : "");
      resultList.appendChild(li);
    });
    (skipped || []).forEach(function (s) {
      var li = document.createElement("li");
      li.className = "muted";
      li.textContent = t("Skipped") + ": " + s.file + " · " + s.reason;
      resultList.appendChild(li);
    });
    phase.textContent = fmt(t("Done: %s series stored."), [(series || []).length]);
    setProgress(1);
    done.hidden = false;
    button.disabled = false;
  }

  function watchJob(jobId) {
    var url = form.dataset.jobUrl.replace(/0\/$/, jobId + "/");
    phase.textContent = t("Processing on the server…");
    setProgress(0);
    var finished = false;
    function handle(data) {
      if (finished) { return; }
      if (typeof data.progress === "number") { setProgress(data.progress); }
      if (data.status === "done") { finished = true; poll(true); }
      else if (data.status === "failed") {
        finished = true;
        var err = data.error || {};
        showError(err.message || t("The upload could not be processed."), err.extra);
      }
    }
    function poll(final) {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (data.status === "done") { finished = true; showSeries(data.series, []); return; }
          handle(data);
          if (!finished && !final) { setTimeout(function () { poll(false); }, 1000); }
        })
        .catch(function () { if (!finished) { setTimeout(function () { poll(false); }, 3000); } });
    }
    try {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + window.location.host + "/ws/jobs/upload/" + jobId + "/");
      ws.onmessage = function (ev) { try { handle(JSON.parse(ev.data)); } catch { /* ignore */ } };
    } catch { /* polling covers it */ }
    poll(false);
  }

  function upload() {
    if (!chosen.length) { showError(t("Choose at least one file.")); statusBox.hidden = false; return; }
    if (chosen.length > maxFiles) { showError(fmt(t("At most %s files per upload; use a zip."), [maxFiles])); statusBox.hidden = false; return; }
    var total = chosen.reduce(function (acc, f) { return acc + f.size; }, 0);
    if (total > maxBytes) { showError(t("The upload is too large.")); statusBox.hidden = false; return; }
    var data = new FormData();
    chosen.forEach(function (f) { data.append("files", f, f.name); });
    if (kind.value) { data.append("kind", kind.value); }
    statusBox.hidden = false;
    errorBox.textContent = "";
    resultList.textContent = "";
    done.hidden = true;
    button.disabled = true;
    phase.textContent = t("Sending files…");
    setProgress(0);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.apiUrl);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (ev) { if (ev.lengthComputable) { setProgress(ev.loaded / ev.total); } };
    xhr.upload.onload = function () { phase.textContent = t("Reading and de-identifying images…"); };
    xhr.onerror = function () { showError(t("The connection failed.")); };
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText || "{}"); } catch { body = {}; }
      if (xhr.status === 201) { showSeries(body.series, body.skipped); }
      else if (xhr.status === 202) { watchJob(body.job); }
      else if (xhr.status === 413) { showError(body.message || t("The upload is too large."), body.extra); }
      else { showError(body.message || fmt(t("The server answered %s."), [xhr.status]), body.extra); }
    };
    xhr.send(data);
  }

  input.addEventListener("change", function () { setFiles(input.files); });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (ev) { ev.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (ev) { ev.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (ev) { if (ev.dataTransfer) { setFiles(ev.dataTransfer.files); } });
  form.addEventListener("submit", function (ev) { ev.preventDefault(); upload(); });
})();
