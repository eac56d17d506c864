// Behaviour every page shares, kept out of the markup (the Content-Security-Policy allows no
// inline handlers): the language menu submits its form when the choice changes.
(function () {
  "use strict";
  var select = document.getElementById("language-select");
  if (select && select.form) {
    select.addEventListener("change", function () { select.form.submit(); });
  }
})();
