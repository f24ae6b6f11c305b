// The catalog entry form: only the sections of the chosen kind are shown (`data-kinds` lists the kinds
// a section belongs to). Without this file every section shows and the server reads the chosen kind's.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var choice = document.querySelector("[data-kind-choice]");
    if (!choice) return;
    var form = choice.form || choice.closest("form");
    function chosen() {
      var checked = choice.querySelector("input[name=kind]:checked");
      return checked ? checked.value : "lxc";
    }
    function apply() {
      var kind = chosen();
      form.querySelectorAll("[data-kinds]").forEach(function (section) {
        var kinds = section.getAttribute("data-kinds").split(" ");
        section.hidden = kinds.indexOf(kind) < 0;
      });
    }
    choice.addEventListener("change", apply);
    apply();
  });
})();
