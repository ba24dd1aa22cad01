/* Maps for the incident page and the map of open incidents (Leaflet, vendored).
 * With no tile server configured the markers are drawn on a plain background: the map must
 * still work in a control room with no outside network. Popups are built with textContent.
 */
(function () {
  "use strict";
  if (!window.L) return;

  var COLOURS = { critical: "#ff5c5c", high: "#ffa94d", medium: "#ffd43b", low: "#74c0fc", none: "#868e96" };
  var DEFAULT_VIEW = [54.0, -2.0];

  function baseMap(el) {
    // markercluster needs a maxZoom even when there is no tile layer to provide one.
    var map = L.map(el, { preferCanvas: true, maxZoom: 18, attributionControl: !!el.dataset.tiles });
    if (el.dataset.tiles) {
      L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: "map tiles" }).addTo(map);
    } else {
      el.classList.add("no-tiles");
    }
    return map;
  }

  function colour(urgency) { return COLOURS[urgency] || COLOURS.none; }

  // ---------------------------------------------------------------- one incident
  var one = document.getElementById("incident-map");
  if (one) {
    var lat = parseFloat(one.dataset.lat), lon = parseFloat(one.dataset.lon);
    var radius = parseFloat(one.dataset.radius) || 100;
    var map = baseMap(one);
    map.setView([lat, lon], 14);  // a view first: shapes need a projection to measure themselves
    var c = colour(one.dataset.urgency);
    var circle = L.circle([lat, lon], { radius: radius, color: c, fillColor: c, fillOpacity: 0.15, weight: 1 }).addTo(map);
    L.circleMarker([lat, lon], { radius: 7, color: "#111", weight: 2, fillColor: c, fillOpacity: 1 }).addTo(map);
    map.fitBounds(circle.getBounds(), { maxZoom: 16 });
  }

  // ---------------------------------------------------------------- all open incidents
  var all = document.getElementById("incident-map-all");
  if (!all) return;
  var bigMap = baseMap(all);
  bigMap.setView(DEFAULT_VIEW, 6);
  var RANK = ["critical", "high", "medium", "low", "none"];
  // A cluster takes the colour of its most urgent incident, so a critical one is never hidden in a crowd.
  function clusterIcon(cluster) {
    var worst = 4;
    cluster.getAllChildMarkers().forEach(function (m) { worst = Math.min(worst, RANK.indexOf(m.options.urgency)); });
    return L.divIcon({ className: "cluster u-" + RANK[Math.max(0, worst)], iconSize: [34, 34],
                       html: String(cluster.getChildCount()) });
  }
  var layer = L.markerClusterGroup
    ? L.markerClusterGroup({ showCoverageOnHover: false, maxClusterRadius: 40, iconCreateFunction: clusterIcon })
    : L.layerGroup();
  bigMap.addLayer(layer);
  var firstLoad = true;

  function popup(item) {
    var box = document.createElement("div");
    var title = document.createElement("a");
    title.href = "/incidents/" + Number(item.id);
    title.textContent = "#" + item.id + " " + item.urgency + " — " + item.summary;
    var where = document.createElement("div");
    where.textContent = (item.location || "geotag") + " · " + item.status;
    box.append(title, where);
    return box;
  }

  function load() {
    fetch(all.dataset.source, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        layer.clearLayers();
        var bounds = [];
        data.incidents.forEach(function (item) {
          var urgency = COLOURS[item.urgency] ? item.urgency : "none";
          var marker = L.marker([item.lat, item.lon], {
            icon: L.divIcon({ className: "pin u-" + urgency, iconSize: [18, 18] }),
            title: "#" + item.id + " " + urgency, urgency: urgency
          });
          marker.bindPopup(popup(item));
          layer.addLayer(marker);
          bounds.push([item.lat, item.lon]);
        });
        var count = document.getElementById("map-count");
        if (count) count.textContent = data.incidents.length + " on the map" +
          (data.unlocated ? ", " + data.unlocated + " without a location" : "");
        all.dataset.markers = String(data.incidents.length);
        if (firstLoad && bounds.length) bigMap.fitBounds(bounds, { maxZoom: 14, padding: [30, 30] });
        firstLoad = false;
      })
      .catch(function () { /* retried on the next live event */ });
  }

  var timer = null;
  document.addEventListener("flare:live", function () { clearTimeout(timer); timer = setTimeout(load, 300); });
  load();
})();
