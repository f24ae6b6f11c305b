// The new-request form: when another template is picked, the number fields take its limits (max) and
// their hints say what this template allows and what the quota leaves.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("f-template_id");
    if (!select) return;
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      ["cores", "memory_mib", "disk_gib"].forEach(function (name) {
        var input = document.getElementById("f-" + name);
        var hint = document.getElementById("h-" + name);
        if (input) input.max = option.getAttribute("data-max-" + name);
        if (hint) hint.textContent = option.getAttribute("data-hint-" + name);
      });
      var own = document.getElementById("h-template_id");
      if (own) own.textContent = option.getAttribute("data-hint-template_id");
    });
  });
})();
