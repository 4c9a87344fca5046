/* The interactive map's proposals (maps/interactive.py builds the page, maps/points.py the data).
 *
 * The page names its Leaflet map and where its points are (#voix-map's data attributes). The
 * points come as columns: {"themes": [slug, …], "id": […], "lat": […], "lon": […],
 * "theme": [index in themes, …], "title": […]}. They go into a marker cluster in chunks (the
 * page stays responsive with 10,000 of them). A popup is made when it opens, its title set as
 * textContent: a title is text, never HTML. When every point is on the map, <html> gets
 * data-points-drawn="N" (what the tests and bench/map_pages.py wait for).
 */
(function () {
  "use strict";
  var holder = document.getElementById("voix-map");
  var map = holder && window[holder.getAttribute("data-map")];
  if (!map || !window.L || !window.fetch) {
    return;
  }
  var root = document.documentElement;

  function icon(slug) {
    // slug matched [a-z_]+ (a theme's slug): never markup.
    return L.divIcon({
      className: "map-marker-icon",
      iconSize: [30, 30],
      iconAnchor: [15, 15],
      html: '<span class="map-marker theme-' + slug + '"><svg aria-hidden="true">' +
        '<use href="/static/themes.svg#theme-' + slug + '"/></svg></span>'
    });
  }

  function popup(layer) {
    var link = document.createElement("a");
    link.href = "/proposals/" + layer.voixId;
    link.target = "_top";
    link.textContent = layer.voixTitle;
    return link;
  }

  function fit(bounds) {
    // The districts' box (the page's initial view) and every point, without animation.
    var given = holder.getAttribute("data-bounds");
    if (given) {
      bounds.extend(L.latLngBounds(JSON.parse(given)));
    }
    if (bounds.isValid() && !map.getBounds().contains(bounds)) {
      map.fitBounds(bounds, { animate: false });
    }
  }

  function drawn(count) {
    window.requestAnimationFrame(function () {
      root.setAttribute("data-points-drawn", String(count));
    });
  }

  function show(data) {
    var ids = data.id || [];
    var count = ids.length;
    var icons = [];
    var markers = new Array(count);
    var bounds = L.latLngBounds([]);
    var i;
    if ([data.lat, data.lon, data.theme, data.title].some(function (column) {
      return !column || column.length !== count;
    })) {
      throw new Error("points: columns of different lengths");
    }
    for (i = 0; i < data.themes.length; i += 1) {
      icons.push(icon(/^[a-z_]{1,32}$/.test(data.themes[i]) ? data.themes[i] : "other"));
    }
    for (i = 0; i < count; i += 1) {
      var marker = L.marker([data.lat[i], data.lon[i]], {
        icon: icons[data.theme[i]] || icons[icons.length - 1],
        title: data.title[i],
        alt: data.title[i]
      });
      marker.voixId = Number(ids[i]);
      marker.voixTitle = data.title[i];
      marker.bindPopup(popup);
      markers[i] = marker;
      bounds.extend(marker.getLatLng());
    }
    fit(bounds);
    // In chunks of 100 ms, the page answering between them (default: 200 ms, 50 ms apart).
    var group = L.markerClusterGroup({
      chunkedLoading: true,
      chunkInterval: 100,
      chunkDelay: 1,
      chunkProgress: function (processed, total) {
        if (processed === total) {
          drawn(total);
        }
      }
    });
    map.addLayer(group);
    if (!markers.length) {
      drawn(0);
      return;
    }
    group.addLayers(markers);
  }

  // As the page's <link rel="preload"> asked for it (same URL, mode and credentials).
  fetch(holder.getAttribute("data-points"), { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) {
        throw new Error(String(response.status));
      }
      return response.json();
    })
    .then(show)
    .catch(function () {
      root.setAttribute("data-points-failed", "");
    });
}());
