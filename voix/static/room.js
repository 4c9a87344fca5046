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
})();
