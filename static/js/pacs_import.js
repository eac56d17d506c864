/* "Import from PACS" on the case list: QIDO-RS search through the platform, then a WADO-RS
   import job followed until its case exists. */
(function () {
  "use strict";
  var root = document.getElementById("pacs-import");
  if (!root) { return; }
  var t = window.gettext || function (s) { return s; };
  var fmt = window.interpolate || function (s) { return s; };
  var ngettext = window.ngettext || function (one, many, n) { return n === 1 ? one : many; };
  var dialog = document.getElementById("pacs-import-dialog");
  var form = document.getElementById("pacs-search");
  var message = document.getElementById("pacs-message");
  var table = document.getElementById("pacs-results");
  var body = table.querySelector("tbody");
  var progressBox = document.getElementById("pacs-progress");
  var bar = progressBox.querySelector("progress");
  var progressText = document.getElementById("pacs-progress-text");
  var csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? "error" : "muted";
  }
  function answer(response) {
    return response.json().then(function (data) {
      if (!response.ok) { throw new Error(data.message || response.statusText); }
      return data;
    });
  }
  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    row.appendChild(td);
    return td;
  }
  function formatDate(value) {
    return value && value.length === 8 ? value.slice(0, 4) + "-" + value.slice(4, 6) + "-" + value.slice(6) : value;
  }
  function follow(job) {
    progressBox.hidden = false;
    bar.value = job.progress || 0;
    if (job.status === "done") {
      progressText.textContent = "";
      var link = document.createElement("a");
      link.href = "/cases/" + job.case + "/";
      link.id = "pacs-import-case";
      link.textContent = fmt(t("Imported as case %s: open it"), [job.case_code]);
      progressText.appendChild(link);
      return;
    }
    if (job.status === "failed" || job.status === "interrupted") {
      progressText.textContent = "";
      say(fmt(t("The import failed: %s"), [job.error]), true);
      return;
    }
    progressText.textContent = job.expected
      ? fmt(t("%s of %s instances retrieved"), [job.retrieved, job.expected])
      : t("Retrieving the study…");
    window.setTimeout(function () {
      fetch(root.dataset.importUrl + job.id + "/", { credentials: "same-origin" })
        .then(answer).then(follow)
        .catch(function (err) { say(err.message, true); });
    }, 1000);
  }
  function startImport(uid, button) {
    button.disabled = true;
    say(t("Import requested."), false);
    fetch(root.dataset.importUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ study_uid: uid })
    }).then(answer).then(follow).catch(function (err) {
      button.disabled = false;
      say(err.message, true);
    });
  }
  function show(results) {
    body.textContent = "";
    table.hidden = !results.length;
    say(results.length
      ? fmt(ngettext("%s study found.", "%s studies found.", results.length), [results.length])
      : t("No study matches."), false);
    results.forEach(function (study) {
      var row = document.createElement("tr");
      row.dataset.study = study.StudyInstanceUID;
      cell(row, formatDate(study.StudyDate));
      cell(row, study.AccessionNumber);
      cell(row, study.StudyDescription);
      cell(row, (study.ModalitiesInStudy || []).join(", "));
      cell(row, study.NumberOfStudyRelatedInstances);
      cell(row, study.PatientID);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "primary pacs-import-study";
      button.textContent = t("Import");
      button.addEventListener("click", function () { startImport(study.StudyInstanceUID, button); });
      cell(row, "").replaceChildren(button);
      body.appendChild(row);
    });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var query = new URLSearchParams(new FormData(form)).toString();
    say(t("Searching the PACS…"), false);
    fetch(root.dataset.searchUrl + "?" + query, { credentials: "same-origin" })
      .then(answer).then(function (data) { show(data.results); })
      .catch(function (err) { table.hidden = true; say(err.message, true); });
  });
  document.getElementById("pacs-import-open").addEventListener("click", function () { dialog.showModal(); });
  document.getElementById("pacs-import-close").addEventListener("click", function () { dialog.close(); });
}());
