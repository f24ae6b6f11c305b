// Live pages: <main data-live-src="/…/live"> names an event stream that says `change` whenever what
// the page shows changed. The page is then fetched again and every element with both an id and
// data-live-region is replaced by its fresh copy; everything else (a form being typed in) stays.
// Without this file the page is simply current as of its last load.
(function () {
  "use strict";
  var root = document.documentElement;
  var main = document.querySelector("main[data-live-src]");
  if (!main || !window.EventSource || !window.fetch || !window.DOMParser) return;
  var src = main.getAttribute("data-live-src");
  var seen = null;      // the fingerprint the page shows
  var inFlight = false; // one fetch at a time…
  var queued = false;   // …and at most one more after it
  var swaps = 0;

  function regions(doc) {
    var out = {};
    doc.querySelectorAll("[data-live-region][id]").forEach(function (el) { out[el.id] = el; });
    return out;
  }

  // A region the fresh page has and this one lacks goes after its nearest earlier sibling that
  // this page has (or first in its parent).
  function place(fresh, node) {
    var prev = fresh.previousElementSibling;
    while (prev && !(prev.id && document.getElementById(prev.id))) prev = prev.previousElementSibling;
    if (prev) { document.getElementById(prev.id).after(node); return; }
    var parent = fresh.parentElement;
    var here = parent && (parent.tagName === "MAIN" ? main : parent.id && document.getElementById(parent.id));
    if (here) here.prepend(node);
  }

  // What the visitor changed in a region (a ticked box, a typed value, the focus) is carried over to
  // its fresh copy, so a change arriving while they work does not undo their work.
  function twin(node, el) {
    if (el.id) return node.querySelector("#" + CSS.escape(el.id));
    if (!el.name) return null;
    var sel = '[name="' + CSS.escape(el.name) + '"]';
    if (el.type === "checkbox" || el.type === "radio") sel += '[value="' + CSS.escape(el.value) + '"]';
    return node.querySelector(sel);
  }
  function keepWork(old, node) {
    old.querySelectorAll("input, select, textarea").forEach(function (el) {
      if (el.type === "hidden") return;
      var toggles = el.type === "checkbox" || el.type === "radio";
      var changed = toggles ? el.checked !== el.defaultChecked
        : el.tagName === "SELECT" ? Array.prototype.some.call(el.options, function (o) { return o.selected !== o.defaultSelected; })
        : el.value !== el.defaultValue;
      var other = (changed || el === document.activeElement) && twin(node, el);
      if (!other) return;
      if (changed && toggles) other.checked = el.checked;
      else if (changed) other.value = el.value;
      if (el === document.activeElement) other.setAttribute("data-live-focus", "");
    });
  }

  function swap(html) {
    var next = new DOMParser().parseFromString(html, "text/html");
    var fresh = regions(next), current = regions(document), changed = [];
    Object.keys(current).forEach(function (id) {
      if (!fresh[id]) current[id].remove();
    });
    Object.keys(fresh).forEach(function (id) {
      var node = document.importNode(fresh[id], true);
      var old = current[id];
      var toast = node.getAttribute("data-live-toast");
      if (toast && (!old || old.getAttribute("data-live-toast") !== toast) && window.proxdesk) {
        window.proxdesk.toast(toast);
      }
      if (old) {
        if (old.isEqualNode(node)) return;
        keepWork(old, node);
        old.replaceWith(node);
        var focus = node.querySelector("[data-live-focus]");
        if (focus) { focus.removeAttribute("data-live-focus"); focus.focus(); }
      } else {
        place(fresh[id], node);
      }
      changed.push(node);
    });
    if (next.title) document.title = next.title;
    changed.forEach(function (node) {
      if (window.proxdesk && window.proxdesk.enhance) window.proxdesk.enhance(node);
    });
    swaps += 1;
    root.setAttribute("data-live-swaps", String(swaps));
  }

  function refresh() {
    if (inFlight) { queued = true; return; }
    inFlight = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        // Signed out meanwhile (sent to the login page): leave the page as it is.
        if (!r.ok || r.redirected) return null;
        return r.text();
      })
      .then(function (html) { if (html) swap(html); })
      .catch(function () { /* the next change tries again */ })
      .then(function () {
        inFlight = false;
        if (queued) { queued = false; refresh(); }
      });
  }

  // How old the page is, by this browser's clock: the server then knows whether a change may have
  // come between the page's rendering and this stream, and says so with a first "stale".
  var age = null;
  var nav = window.performance && performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
  if (nav) age = Math.max(0, Math.round(performance.now() - nav.requestStart));

  var stream = null;
  function connect() {
    var url = src;
    if (age !== null) { url += (src.indexOf("?") < 0 ? "?" : "&") + "age=" + age; age = null; }
    stream = new EventSource(url);
    stream.addEventListener("change", function (e) {
      root.setAttribute("data-live", "connected");
      // The first fingerprint describes the page as just loaded; after a reconnection, one that
      // differs from the last seen means something changed while the stream was down.
      if (seen === null) { seen = e.data; return; }
      if (e.data === seen) return;
      seen = e.data;
      refresh();
    });
    stream.addEventListener("error", function () {
      if (stream.readyState !== EventSource.CLOSED) return; // EventSource reconnects by itself
      // Refused (signed out, too many tabs) or the server is stopping: try again later, gently.
      root.setAttribute("data-live", "closed");
      setTimeout(connect, 30000);
    });
  }
  connect();
  window.addEventListener("pagehide", function () { if (stream) stream.close(); });
  // Back from the back-forward cache: the page may be stale, and its stream was closed.
  window.addEventListener("pageshow", function (e) { if (e.persisted) { seen = null; connect(); refresh(); } });
})();
