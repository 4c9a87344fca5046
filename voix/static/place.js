// Placing a proposal with a click on the map of the table's districts. Without this script
// (or without a network for the tiles), the list of named places does the same job.
(function () {
  "use strict";
  var box = document.getElementById("place-map");
  if (!box || !window.L || !window.fetch) return;
  var latitude = document.getElementById("f-latitude");
  var longitude = document.getElementById("f-longitude");
  var named = document.getElementById("f-place");
  box.hidden = false;
  var map = L.map(box, { scrollWheelZoom: false });
  L.tileLayer(box.dataset.tiles, { attribution: box.dataset.attribution, maxZoom: 19 }).addTo(map);
  var marker = null;
  function place(point) {
    latitude.value = point.lat.toFixed(6);
    longitude.value = point.lng.toFixed(6);
    if (marker) marker.setLatLng(point); else marker = L.marker(point).addTo(map);
    if (named) named.value = "";
  }
  fetch(box.dataset.districts).then(function (response) { return response.json(); }).then(function (geo) {
    var layer = L.geoJSON(geo, { style: { color: "#8c1d40", weight: 2, fillOpacity: 0.08 } }).addTo(map);
    map.fitBounds(layer.getBounds());
    if (latitude.value && longitude.value) place(L.latLng(+latitude.value, +longitude.value));
  });
  map.on("click", function (event) { place(event.latlng); });
  if (named) named.addEventListener("change", function () {
    if (named.value && marker) { map.removeLayer(marker); marker = null; latitude.value = ""; longitude.value = ""; }
  });
})();
