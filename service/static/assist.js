/* techmatch: the demand form's filling assistant. As the user types, the form is posted to
   /demands/assist (debounced) and the returned section replaces the assistant; the form itself
   works without this script (its "Check" button renders the same section). */
(function () {
  "use strict";
  var DELAY = 600;
  function init() {
    var form = document.getElementById("demand-form");
    var box = document.getElementById("assistant");
    if (!form || !box) { return; }
    var timer = null, sent = 0, shown = 0;
    function refresh() {
      var mine = ++sent;
      fetch(box.getAttribute("data-assist-url"), {method: "POST", body: new FormData(form),
                                                  credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          if (mine < shown) { return; }  // an older answer arriving late
          shown = mine;
          box.innerHTML = html;
          box.setAttribute("data-round", String(mine));
        })
        .catch(function () { /* the Check button still works */ });
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, DELAY);
    });
  }
  document.addEventListener("DOMContentLoaded", init);
})();
