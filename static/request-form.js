// The new-request form: when another catalog entry is picked, the number fields take its limits (max),
// their hints say what this entry allows and what the quota leaves, the kind sign follows, and the
// storage, bridge and ISO lists show only the entry's own choices (a list the entry has none of hides).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("f-template_id");
    if (!select) return;

    // `keep`: on load the server's selection stands (what was typed, or kept after an error).
    function showChoices(id, keep) {
      document.querySelectorAll("[data-choice]").forEach(function (field) {
        var list = field.querySelector("select");
        var mine = null;
        list.querySelectorAll("optgroup").forEach(function (group) {
          var own = group.getAttribute("data-for") === id;
          group.hidden = !own;
          group.disabled = !own;
          if (own) mine = group;
        });
        var fallback = list.querySelector("option[data-default]");
        var kept = list.querySelector("option[data-kept]");
        if (fallback) fallback.hidden = !!mine;
        field.hidden = !mine && !kept;
        list.disabled = !mine && !kept;
        if (!mine) return;
        var current = list.options[list.selectedIndex];
        var usable = current && current.parentNode === mine;
        if (keep && current && (usable || current === kept)) return;
        if (!usable && mine.querySelector("option")) mine.querySelector("option").selected = true;
      });
    }

    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      ["cores", "memory_mib", "disk_gib"].forEach(function (name) {
        var input = document.getElementById("f-" + name);
        var hint = document.getElementById("h-" + name);
        if (input) input.max = option.getAttribute("data-max-" + name);
        if (hint) hint.textContent = option.getAttribute("data-hint-" + name);
      });
      var own = document.getElementById("template-hint");
      if (own) own.textContent = option.getAttribute("data-hint-template_id");
      var sign = document.getElementById("template-kind");
      if (sign) sign.textContent = option.getAttribute("data-kind-short");
      showChoices(select.value, false);
    });
    showChoices(select.value, true);
  });
})();
