// Follows an order's background jobs: fetches the timeline partial every 1.5 s and swaps it in,
// until the partial says that everything has finished (data-final="true").
(function () {
  "use strict";

  var INTERVAL_MS = 1500;
  var container = document.getElementById("timeline");
  if (!container) {
    return;
  }
  var url = container.dataset.url;

  function isFinal() {
    var timeline = container.querySelector("[data-final]");
    return timeline !== null && timeline.dataset.final === "true";
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
        // A redirect means the session ended (the login page answered): do not show that here.
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
})();
