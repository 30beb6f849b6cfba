// Keeps parts of a page live without reloading it: every element with data-live-url has its
// content fetched from that URL and swapped in, every 1.5 s while it is moving, and every 10 s
// once the fetched content says it has settled (an element with data-final="true": an order
// whose jobs all finished). It never stops for good: a finished job can come back to life (an
// operator requeues a dead letter, a lost run is taken up again) and the page must follow it
// without a reload. While the tab is hidden it does not poll; it looks again when shown.
// An element elsewhere on the page that makes sense only in some states of a live part (an
// order's Cancel, while the order can be cancelled) says which with data-live-while, a CSS
// selector: it is hidden whenever the live content holds nothing that matches it.
(function () {
  "use strict";

  var MOVING_MS = 1500;
  var SETTLED_MS = 10000;

  function follow(container) {
    var url = container.dataset.liveUrl;
    var timer = null;

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

    function schedule() {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, isFinal() ? SETTLED_MS : MOVING_MS);
    }

    function refresh() {
      if (document.hidden) {
        return; // visibilitychange brings it back
      }
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
          showWhatStillApplies();
          schedule();
        })
        .catch(function () {
          stop("live updates stopped; reload the page to resume.");
        });
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) {
        refresh();
      }
    });
    schedule();
  }

  function showWhatStillApplies() {
    document.querySelectorAll("[data-live-while]").forEach(function (element) {
      element.hidden = document.querySelector(element.dataset.liveWhile) === null;
    });
  }

  document.querySelectorAll("[data-live-url]").forEach(follow);
})();
