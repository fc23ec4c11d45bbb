/* Fiktiv web UI: the one script, small progressive enhancement only. Every page works
   without it. Served from /static (the Content-Security-Policy allows no inline script
   and no other origin).

   A region marked data-poll (the progress of a running check) is refreshed from the
   same page every few seconds until the run is done; the region is an aria-live
   region, so screen readers hear the progress. */
(function () {
  "use strict";

  var INTERVAL_MS = 1500;
  var BACKOFF_MS = 5000;

  function start(region) {
    var id = region.id;
    if (!id || !window.fetch || !window.DOMParser) {
      return;
    }
    function tick() {
      window
        .fetch(window.location.href, {
          credentials: "same-origin",
          cache: "no-store",
          redirect: "error"
        })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("status " + response.status);
          }
          return response.text();
        })
        .then(function (text) {
          var doc = new window.DOMParser().parseFromString(text, "text/html");
          var fresh = doc.getElementById(id);
          var current = document.getElementById(id);
          if (!fresh || !current) {
            return;
          }
          current.innerHTML = fresh.innerHTML;
          if (fresh.hasAttribute("data-poll")) {
            window.setTimeout(tick, INTERVAL_MS);
          } else {
            current.removeAttribute("data-poll");
            current.setAttribute("data-done", "");
            var after = doc.getElementById(id + "-after");
            var here = document.getElementById(id + "-after");
            if (after && here) {
              here.innerHTML = after.innerHTML;
            }
          }
        })
        .catch(function () {
          window.setTimeout(tick, BACKOFF_MS);
        });
    }
    window.setTimeout(tick, INTERVAL_MS);
  }

  function init() {
    var regions = document.querySelectorAll("[data-poll]");
    for (var i = 0; i < regions.length; i += 1) {
      start(regions[i]);
    }
    // A print button (the access report): the browser's print dialog. Without the
    // script the browser's own print command does the same.
    var prints = document.querySelectorAll("[data-print]");
    for (var j = 0; j < prints.length; j += 1) {
      prints[j].addEventListener("click", function () {
        window.print();
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
