/* techmatch: refresh a page section while a background job runs (no framework, no CDN).
   An element with an id and data-poll="<ms>" is re-fetched from the same URL and swapped in
   until the fresh copy no longer has data-poll. */
(function () {
  "use strict";
  function watch(el) {
    var delay = parseInt(el.getAttribute("data-poll"), 10) || 3000;
    setTimeout(function () {
      fetch(window.location.pathname + window.location.search, {credentials: "same-origin",
                                                                 headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(el.id);
          if (!fresh) { return; }
          el.replaceWith(fresh);
          if (fresh.hasAttribute("data-poll")) { watch(fresh); }
        })
        .catch(function () { watch(el); });
    }, delay);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var els = document.querySelectorAll("[data-poll][id]");
    for (var i = 0; i < els.length; i++) { watch(els[i]); }
  });
})();
