// Speaking time ticks between two updates of the room; without this file the time is still
// shown, as of the last update.
(function () {
  "use strict";
  function tick() {
    document.querySelectorAll("[data-elapsed]").forEach(function (clock) {
      if (!clock.dataset.since) {
        clock.dataset.since = String(Date.now() - Number(clock.dataset.elapsed) * 1000);
      }
      var seconds = Math.max(0, Math.floor((Date.now() - Number(clock.dataset.since)) / 1000));
      clock.textContent = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
    });
  }
  setInterval(tick, 1000);

  // When the live stream opens again (the server restarted, or the connection dropped), the
  // events sent meanwhile reached nobody: the room is fetched again rather than left stale
  // until the next change. The first opening needs nothing: the page was just rendered.
  var opened = new WeakSet();
  document.addEventListener("htmx:sseOpen", function (event) {
    var source = event.target;
    if (opened.has(source)) {
      var room = source.querySelector("#room");
      if (room) {
        htmx.trigger(room, "room:reconnected");
      }
    }
    opened.add(source);
  });
})();
