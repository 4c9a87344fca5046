// Ballot page: say how many proposals are still ungraded as the voter goes, and print the
// receipt. The page works without this file: the server asks before counting ungraded ones.
(function () {
  "use strict";
  var form = document.querySelector("form.ballot-majority_judgment");
  if (form) {
    var counter = form.querySelector(".ungraded-count");
    // One sentence per count, translated by the server (Arabic has six plural forms).
    var sentences = JSON.parse(form.getAttribute("data-ungraded") || "{}");
    var update = function () {
      var left = form.querySelectorAll(".grade-none input:checked").length;
      counter.hidden = left === 0;
      counter.textContent = left === 0 ? "" : sentences[String(left)] || "";
    };
    form.addEventListener("change", update);
    update();
  }
  var print = document.querySelector(".print-slip");
  if (print) {
    print.hidden = false;
    print.addEventListener("click", function () { window.print(); });
  }
})();
