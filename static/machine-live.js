// A machine's details page: the element with data-live-poll (status block and charts) is fetched again
// from its URL every 5 s while the tab is visible, and at once when the tab comes back. Without this
// file the page has its "Refresh" link.
(function () {
  "use strict";
  var PERIOD = 5000;
  var timer = null;
  var busy = false;
  if (!window.fetch || !window.DOMParser) return;

  function box() { return document.querySelector("[data-live-poll]"); }

  function refresh() {
    var el = box();
    if (!el || busy || document.visibilityState !== "visible") return;
    busy = true;
    fetch(el.getAttribute("data-live-poll"), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live-poll]");
        var here = box();
        // Keep the focus where it was when it sat on a link inside (the range tabs).
        var focused = document.activeElement && here.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
        if (fresh && here) {
          here.replaceWith(fresh);
          if (focused) { var again = fresh.querySelector('a[href="' + focused + '"]'); if (again) again.focus(); }
        }
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { busy = false; });
  }

  function start() { if (!timer) timer = setInterval(refresh, PERIOD); }
  function stop() { if (timer) { clearInterval(timer); timer = null; } }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { refresh(); start(); } else { stop(); }
  });
  if (document.visibilityState === "visible") start();
})();
