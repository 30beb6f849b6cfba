// Keeps parts of a page live without reloading it: every element with data-live-url has its
// content fetched from that URL every 1.5 s and swapped in, until the fetched content says it
// has reached its end (an element with data-final="true": an order whose jobs all finished).
(function () {
  "use strict";

  var INTERVAL_MS = 1500;

  function follow(container) {
    var url = container.dataset.liveUrl;

    function isFinal() {
      var marker = container.querySelector("[data-final]");
      return marker !== null && marker.dataset.final === "true";
    }

    function stop(reason) {
      var live = container.querySelector(".live");
      if (live) {
        live.textContent = "· " + reason;
      }
    }

    function refresh() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" }, cache: "no-store" })
        .then(function (response) {
          // A redirect means the session ended (the login page answered): don't show that here.
          if (!response.ok || response.redirected) {
            throw new Error("HTTP " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          container.innerHTML = html;
          if (!isFinal()) {
            window.setTimeout(refresh, INTERVAL_MS);
          }
        })
        .catch(function () {
          stop("live updates stopped; reload the page to resume.");
        });
    }

    if (!isFinal()) {
      window.setTimeout(refresh, INTERVAL_MS);
    }
  }

  document.querySelectorAll("[data-live-url]").forEach(follow);
})();
