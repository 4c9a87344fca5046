// A login card's QR code carries its code after "#": browsers never send that part to the
// server, so the code reaches no access log. This puts it in the form; the resident still
// presses the button (nothing signs in by merely opening a link). Without JavaScript, the
// code is typed.
(function () {
  "use strict";
  var field = document.getElementById("f-code");
  var code = window.location.hash.slice(1);
  if (!field || !code) return;
  try { code = decodeURIComponent(code); } catch (e) { return; }
  field.value = code.replace(/[^0-9A-Za-z -]/g, "").slice(0, 40);
  var read = document.getElementById("card-read");
  if (read) read.hidden = false;
  // The code leaves the address bar and the history.
  if (window.history && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
})();
