// proxdesk's page behaviour: every page works without this file; it adds the menu button, the theme
// switch, confirmation dialogs, copy buttons, toasts, select-all, clickable rows and ticking uptimes.
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");

  // Theme: auto (the system's), light or dark; the choice is kept in this browser.
  var THEMES = ["auto", "light", "dark"];
  function applyTheme(theme) {
    if (theme === "light" || theme === "dark") root.setAttribute("data-theme", theme);
    else root.removeAttribute("data-theme");
  }
  var saved = null;
  try { saved = localStorage.getItem("proxdesk-theme"); } catch (e) { /* storage may be off */ }
  applyTheme(saved);

  function toast(text) {
    var box = document.getElementById("toasts");
    if (!box || !text) return;
    var t = document.createElement("div");
    t.className = "toast";
    var p = document.createElement("p");
    p.textContent = text;
    t.appendChild(p);
    box.appendChild(t);
    dismissLater(t);
  }
  function dismissLater(t) {
    var close = document.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", "×");
    close.textContent = "×";
    close.addEventListener("click", function () { t.remove(); });
    t.appendChild(close);
    setTimeout(function () { t.remove(); }, 8000);
  }
  window.proxdesk = { toast: toast, enhance: enhance };

  // Confirmation: one dialog for every form with data-confirm; OK re-submits with confirmed=yes.
  var dialog = null;
  function confirmDialog(form, submitter) {
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.className = "confirm";
      dialog.setAttribute("aria-labelledby", "confirm-text");
      dialog.innerHTML = '<p id="confirm-text"></p><form method="dialog" class="button-row">' +
        '<button value="cancel" class="secondary"></button><button value="ok" class="danger"></button></form>';
      document.body.appendChild(dialog);
    }
    dialog.querySelector("p").textContent = form.getAttribute("data-confirm");
    var buttons = dialog.querySelectorAll("button");
    buttons[0].textContent = root.getAttribute("data-cancel") || document.body.getAttribute("data-cancel") || "Cancel";
    buttons[1].textContent = form.getAttribute("data-confirm-ok") || (submitter && submitter.textContent.trim()) || "OK";
    dialog.returnValue = "";
    dialog.onclose = function () {
      if (dialog.returnValue !== "ok") return;
      var yes = document.createElement("input");
      yes.type = "hidden"; yes.name = "confirmed"; yes.value = "yes";
      form.appendChild(yes);
      if (submitter && submitter.name) {
        var s = document.createElement("input");
        s.type = "hidden"; s.name = submitter.name; s.value = submitter.value;
        form.appendChild(s);
      }
      form.setAttribute("data-confirmed", "");
      // A live update may have swapped the form out while the dialog was open; a detached form
      // cannot be submitted, so it goes back into the page (hidden) first.
      if (!form.isConnected) { form.hidden = true; document.body.appendChild(form); }
      form.submit();
    };
    dialog.showModal();
    buttons[0].focus();
  }

  function enhance(scope) {
    scope.querySelectorAll("[data-copy]").forEach(function (b) {
      if (!navigator.clipboard) return;
      b.hidden = false;
    });
    scope.querySelectorAll("[data-uptime]").forEach(function (el) {
      el.setAttribute("data-uptime-at", String(Date.now()));
    });
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.hasAttribute("data-confirm") || form.hasAttribute("data-confirmed")) return;
    e.preventDefault();
    confirmDialog(form, e.submitter);
  });

  document.addEventListener("click", function (e) {
    var copy = e.target.closest("[data-copy]");
    if (copy) {
      navigator.clipboard.writeText(copy.getAttribute("data-copy")).then(function () {
        copy.classList.add("done");
        toast(copy.getAttribute("data-copied"));
        setTimeout(function () { copy.classList.remove("done"); }, 2000);
      });
      return;
    }
    var toggle = e.target.closest(".nav-toggle");
    if (toggle) {
      var nav = document.getElementById(toggle.getAttribute("aria-controls"));
      var open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      return;
    }
    var theme = e.target.closest("[data-theme-toggle]");
    if (theme) {
      var current = root.getAttribute("data-theme") || "auto";
      var next = THEMES[(THEMES.indexOf(current) + 1) % THEMES.length];
      applyTheme(next);
      try { localStorage.setItem("proxdesk-theme", next); } catch (err) { /* not kept */ }
      labelTheme(theme);
      return;
    }
    // A click anywhere on a row-link row follows the row's first link (not on its controls).
    var row = e.target.closest("tr.row-link");
    if (row && !e.target.closest("a, button, input, select, textarea, label, form")) {
      var link = row.querySelector("a[href]");
      if (link) window.location.href = link.href;
    }
  });

  document.addEventListener("change", function (e) {
    var all = e.target.closest("[data-select-all]");
    if (!all) return;
    var name = all.getAttribute("data-select-all");
    var scope = all.form || document;
    scope.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (c) {
      if (!c.disabled) c.checked = all.checked;
    });
  });

  function labelTheme(button) {
    var labels = (button.getAttribute("data-labels") || "").split("|");
    var i = THEMES.indexOf(root.getAttribute("data-theme") || "auto");
    button.setAttribute("aria-label", labels[i] || THEMES[i]);
    button.title = labels[i] || THEMES[i];
  }

  // Uptime that keeps counting while the page is open.
  function formatUptime(secs, units) {
    var u = units.split(" ");
    var d = Math.floor(secs / 86400), h = Math.floor(secs % 86400 / 3600), m = Math.floor(secs % 3600 / 60);
    if (d > 0) return d + " " + u[0] + " " + h + " " + u[1];
    if (h > 0) return h + " " + u[1] + " " + m + " " + u[2];
    return m + " " + u[2];
  }
  setInterval(function () {
    document.querySelectorAll("[data-uptime][data-units]").forEach(function (el) {
      var since = Number(el.getAttribute("data-uptime-at")) || Date.now();
      var secs = Number(el.getAttribute("data-uptime")) + Math.floor((Date.now() - since) / 1000);
      el.textContent = formatUptime(secs, el.getAttribute("data-units"));
    });
  }, 30000);

  document.addEventListener("DOMContentLoaded", function () {
    var theme = document.querySelector("[data-theme-toggle]");
    if (theme) { theme.hidden = false; labelTheme(theme); }
    document.querySelectorAll(".toast").forEach(dismissLater);
    enhance(document);
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();
