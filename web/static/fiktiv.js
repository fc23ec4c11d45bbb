/* Fiktiv web UI: the one script, small progressive enhancement only. Every page works
   without it. Served from /static (the Content-Security-Policy allows no inline script
   and no other origin).

   A region marked data-poll (the progress of a running check) is refreshed from the
   same page every few seconds until the run is done; the region is an aria-live
   region, so screen readers hear the progress.

   A personal number field (data-pnr) is checked before its form is sent: a Swedish or
   Norwegian number of full length with a wrong check digit stops the submit with a
   message, so that nothing typed is lost (the server never sends a real identity back,
   so a refused form comes back empty). The server checks again.

   A signed-in page (data-idle on the body: the idle timeout in seconds) warns before
   the session ends; "Keep working" touches the session (GET /session/alive). A plan
   sent after the session has ended anyway is kept as a draft by the server.

   A text area with data-max shows how many characters it holds, and stops the submit
   when it holds more than the server takes, so that a long text is never lost. */
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

  function digitsOf(s) {
    return s.replace(/[^0-9]/g, "");
  }

  // Luhn over the ten digits YYMMDDNNNC (samordningsnummer too).
  function swedishOk(d) {
    if (d.length === 12) {
      d = d.slice(2);
    }
    if (d.length !== 10) {
      return null;
    }
    var sum = 0;
    for (var i = 0; i < 10; i += 1) {
      var v = Number(d.charAt(i)) * (i % 2 === 0 ? 2 : 1);
      sum += v > 9 ? v - 9 : v;
    }
    return sum % 10 === 0;
  }

  // The two mod-11 check digits of a fødselsnummer (D- and H-numbers too).
  function norwegianOk(d) {
    if (d.length !== 11) {
      return null;
    }
    function check(weights) {
      var sum = 0;
      for (var i = 0; i < weights.length; i += 1) {
        sum += Number(d.charAt(i)) * weights[i];
      }
      var k = 11 - (sum % 11);
      return k === 11 ? 0 : k;
    }
    var k1 = check([3, 7, 6, 1, 8, 9, 4, 5, 2]);
    var k2 = check([5, 4, 3, 2, 7, 6, 5, 4, 3, 2]);
    return k1 !== 10 && k2 !== 10 && k1 === Number(d.charAt(9)) && k2 === Number(d.charAt(10));
  }

  function showError(input, id, text) {
    var p = document.getElementById(id);
    if (!p) {
      p = document.createElement("p");
      p.className = "field-error";
      p.id = id;
      p.setAttribute("role", "alert");
      input.parentNode.insertBefore(p, input);
      var described = input.getAttribute("aria-describedby");
      input.setAttribute("aria-describedby", described ? described + " " + id : id);
    }
    p.textContent = text;
    input.setAttribute("aria-invalid", "true");
  }

  function clearError(input, id) {
    var p = document.getElementById(id);
    if (p) {
      p.parentNode.removeChild(p);
      var described = (input.getAttribute("aria-describedby") || "")
        .split(" ")
        .filter(function (x) { return x && x !== id; })
        .join(" ");
      if (described) {
        input.setAttribute("aria-describedby", described);
      } else {
        input.removeAttribute("aria-describedby");
      }
      input.removeAttribute("aria-invalid");
    }
  }

  function checkNumberBeforeSubmit(input) {
    var form = input.form;
    if (!form) {
      return;
    }
    form.addEventListener("submit", function (event) {
      var country = form.querySelector("input[name=country]:checked");
      var d = digitsOf(input.value);
      var ok = null;
      if (country && country.value === "se") {
        ok = swedishOk(d);
      } else if (country && country.value === "no") {
        ok = norwegianOk(d);
      }
      var id = input.id + "-check";
      if (ok === false) {
        event.preventDefault();
        showError(input, id, input.getAttribute("data-pnr-message") || "");
        input.focus();
      } else {
        clearError(input, id);
      }
    });
  }

  function fill(template, n, max) {
    return template.replace("{n}", String(n)).replace("{max}", String(max));
  }

  function counter(area) {
    var max = Number(area.getAttribute("data-max"));
    if (!max || !area.form) {
      return;
    }
    var out = document.createElement("p");
    out.className = "hint counter";
    out.id = area.id + "-count";
    out.setAttribute("aria-live", "polite");
    area.parentNode.insertBefore(out, area.nextSibling);
    function length() {
      // Characters as the server counts them (code points); a line break the browser
      // sends as CR LF is kept as one.
      return Array.from(area.value.replace(/\r\n/g, "\n")).length;
    }
    function update() {
      var n = length();
      out.textContent = fill(area.getAttribute("data-count") || "", n, max);
      if (n > max) {
        out.classList.add("counter-over");
      } else {
        out.classList.remove("counter-over");
        clearError(area, area.id + "-over");
      }
    }
    area.addEventListener("input", update);
    update();
    area.form.addEventListener("submit", function (event) {
      var n = length();
      if (n > max) {
        event.preventDefault();
        showError(area, area.id + "-over", fill(area.getAttribute("data-count-over") || "", n, max));
        area.focus();
      }
    });
  }

  function idleWarning() {
    var body = document.body;
    var idle = Number(body.getAttribute("data-idle"));
    if (!idle || !window.fetch) {
      return;
    }
    // Two minutes before the end, or a quarter of the timeout when it is short.
    var lead = Math.min(120, Math.floor(idle / 4));
    var timer = null;
    function arm() {
      window.clearTimeout(timer);
      timer = window.setTimeout(show, (idle - lead) * 1000);
    }
    function show() {
      if (document.getElementById("session-warning")) {
        return;
      }
      var box = document.createElement("div");
      box.id = "session-warning";
      box.className = "notice session-warning";
      box.setAttribute("role", "alert");
      var p = document.createElement("p");
      p.textContent = body.getAttribute("data-idle-warning") || "";
      var button = document.createElement("button");
      button.type = "button";
      button.id = "session-continue";
      button.textContent = body.getAttribute("data-idle-continue") || "";
      button.addEventListener("click", function () {
        window
          .fetch("/session/alive", { credentials: "same-origin", cache: "no-store", redirect: "error" })
          .then(function (response) {
            if (response.status === 204 && box.parentNode) {
              box.parentNode.removeChild(box);
              arm();
            }
          })
          .catch(function () {});
      });
      box.appendChild(p);
      box.appendChild(button);
      var main = document.getElementById("main") || body;
      main.insertBefore(box, main.firstChild);
    }
    arm();
  }

  function init() {
    idleWarning();
    var numbers = document.querySelectorAll("input[data-pnr]");
    for (var n = 0; n < numbers.length; n += 1) {
      checkNumberBeforeSubmit(numbers[n]);
    }
    var areas = document.querySelectorAll("textarea[data-max]");
    for (var a = 0; a < areas.length; a += 1) {
      counter(areas[a]);
    }
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
