// Consistency checks of a case (GET /api/cases/{id}/checks/) shown wherever an element
// carries data-checks-case="<case id>": the editor's side panel, the review queue.
// A check informs; nothing here blocks saving.
(function () {
  "use strict";
  var nodes = document.querySelectorAll("[data-checks-case]");
  Array.prototype.forEach.call(nodes, function (node) {
    var caseId = node.getAttribute("data-checks-case");
    fetch("/api/cases/" + encodeURIComponent(caseId) + "/checks/", {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (checks) {
        node.textContent = "";
        node.setAttribute("data-checks-count", String(checks.length));
        if (!checks.length) { return; }
        var list = document.createElement("ul");
        list.className = "checks";
        checks.forEach(function (check) {
          var item = document.createElement("li");
          item.className = "check " + check.severity;
          item.setAttribute("data-code", check.code);
          item.textContent = check.message;
          list.appendChild(item);
        });
        node.appendChild(list);
        node.hidden = false;
      })
      .catch(function () { /* checks are advisory: a failed fetch shows nothing */ });
  });
})();
