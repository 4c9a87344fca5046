// The shared tablet: left alone for two minutes (no touch, no key), it goes back to the list
// of names, so a ballot half filled in is not left for the next person to see. Without
// JavaScript the page's <noscript> refresh does the same after two minutes, touched or not.
(function () {
  "use strict";
  var holder = document.querySelector("[data-idle-to]");
  if (!holder) { return; }
  var target = holder.getAttribute("data-idle-to");
  var IDLE = 120 * 1000;
  var timer = null;
  var restart = function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(function () { window.location.replace(target); }, IDLE);
  };
  ["pointerdown", "keydown", "input", "change", "scroll", "touchstart"].forEach(function (name) {
    window.addEventListener(name, restart, { passive: true, capture: true });
  });
  restart();
  // Coming back to this page from the history shows the list instead, never a filled form.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { window.location.replace(target); }
  });
})();
