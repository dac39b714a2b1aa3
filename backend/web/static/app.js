/* IR follow-up: the little the pages need from a script. Everything works without it. */
(function () {
  "use strict";

  /* The queue refreshes its list in place: the scroll position and the focused alert stay
     where they were, and a screen reader hears a short status, not the whole list. */
  function refreshQueue(region) {
    var seconds = Number(region.getAttribute("data-refresh")) || 60;
    var source = region.getAttribute("data-source");
    var status = document.getElementById("queue-status");
    var last = region.innerHTML;

    function update() {
      if (document.hidden) return;
      fetch(source + window.location.search, {
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch", "Accept": "text/html" }
      }).then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (html === null || html === last) return;
        var focused = document.activeElement;
        var focusedId = focused && region.contains(focused) ? focused.id : null;
        var x = window.scrollX, y = window.scrollY;
        // The ticks of the bulk acknowledge survive the refresh (an alert gone stays unticked).
        var ticked = Array.prototype.map.call(
          region.querySelectorAll("input[name=alert_ids]:checked"),
          function (box) { return box.value; });
        region.innerHTML = html;
        ticked.forEach(function (value) {
          var box = region.querySelector("input[name=alert_ids][value='" + value + "']");
          if (box) box.checked = true;
        });
        last = html;
        if (focusedId) {
          var again = document.getElementById(focusedId);
          if (again) again.focus({ preventScroll: true });
        }
        window.scrollTo(x, y);
        var list = region.querySelector("[data-count]");
        if (status && list) {
          status.textContent = status.getAttribute("data-template")
            .replace("%(time)s", list.getAttribute("data-updated"));
        }
      }).catch(function () { /* offline for a moment: the next tick tries again */ });
    }

    window.setInterval(update, seconds * 1000);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) update();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var queue = document.querySelector("[data-refresh]");
    if (queue) refreshQueue(queue);

    Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });

    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();
