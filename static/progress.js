// Live progress on a request page while it is being provisioned or deleted: fetch the page again
// every two seconds and swap in the new content, so each step shows as it happens.
(function () {
  "use strict";
  function watch() {
    var timeline = document.querySelector("[data-live-request]");
    if (!timeline) return;
    var status = timeline.getAttribute("data-status");
    var entries = timeline.getAttribute("data-entries");
    setTimeout(function () {
      fetch(window.location.pathname, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var next = new DOMParser().parseFromString(html, "text/html");
          var main = next.querySelector("main");
          var fresh = next.querySelector("#timeline");
          var changed = !fresh || fresh.getAttribute("data-status") !== status || fresh.getAttribute("data-entries") !== entries;
          if (main && changed) document.querySelector("main").innerHTML = main.innerHTML;
          watch();
        })
        .catch(function () { watch(); });
    }, 2000);
  }
  watch();
})();
