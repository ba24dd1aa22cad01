/* Maps for the incident page and the map of open incidents (Leaflet, vendored).
 * With no tile server configured the markers are drawn on a plain background: the map must
 * still work in a control room with no outside network. Popups are built with textContent.
 */
(function () {
  "use strict";
  if (!window.L) return;

  var COLOURS = { critical: "#ff5c5c", high: "#ffa94d", medium: "#ffd43b", low: "#74c0fc", none: "#868e96" };
  var DEFAULT_VIEW = [54.0, -2.0];

  // Without tiles: Flare's own outlines (world coarse, the service area in detail), drawn as
  // vector shapes under the markers; no request leaves the site.
  function outlines(map) {
    function style(feature) {
      return feature.properties.kind === "outline"
        ? { color: "#7d8ea3", weight: 1, fill: false, interactive: false }
        : { stroke: false, fillColor: "#24303d", fillOpacity: 1, interactive: false };
    }
    var pane = map.createPane("outlines");
    pane.style.zIndex = 250;  // above the background, below markers and circles
    var loaded = 0;
    ["world", "area"].forEach(function (name) {
      fetch("/map/base/" + name + ".geojson", { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (data) {
          L.geoJSON(data, { style: style, pane: "outlines" }).addTo(map);
          loaded += 1;
          map.getContainer().dataset.outlines = String(loaded);
        })
        .catch(function () { /* markers still show on the plain background */ });
    });
  }

  function baseMap(el) {
    // markercluster needs a maxZoom even when there is no tile layer to provide one.
    var map = L.map(el, { preferCanvas: true, maxZoom: 18, attributionControl: !!el.dataset.tiles });
    if (el.dataset.tiles) {
      L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: "map tiles" }).addTo(map);
    } else {
      el.classList.add("no-tiles");
      outlines(map);
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

  // The list beside the map: the same incidents, most urgent first; choosing one shows it.
  var list = document.getElementById("map-list");
  function listItem(item, marker) {
    var li = document.createElement("li");
    li.className = "u-" + (COLOURS[item.urgency] ? item.urgency : "none");
    li.dataset.incident = String(item.id);
    var show = document.createElement("button");
    show.type = "button";
    show.className = "link show-on-map";
    show.textContent = "#" + item.id + " " + item.urgency + " — " + item.summary;
    show.addEventListener("click", function () {
      bigMap.setView([item.lat, item.lon], Math.max(bigMap.getZoom(), 14));
      if (layer.zoomToShowLayer) layer.zoomToShowLayer(marker, function () { marker.openPopup(); });
      else marker.openPopup();
    });
    var where = document.createElement("div");
    where.className = "muted small";
    where.textContent = (item.location || "geotag") + " · " + item.status;
    var open = document.createElement("a");
    open.href = "/incidents/" + Number(item.id);
    open.textContent = "open";
    where.append(" · ", open);
    li.append(show, where);
    return li;
  }

  function load() {
    fetch(all.dataset.source, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        layer.clearLayers();
        var bounds = [];
        var entries = [];
        data.incidents.forEach(function (item) {
          var urgency = COLOURS[item.urgency] ? item.urgency : "none";
          var marker = L.marker([item.lat, item.lon], {
            icon: L.divIcon({ className: "pin u-" + urgency, iconSize: [18, 18] }),
            title: "#" + item.id + " " + urgency, urgency: urgency
          });
          marker.bindPopup(popup(item));
          layer.addLayer(marker);
          bounds.push([item.lat, item.lon]);
          entries.push([item, marker]);
        });
        if (list) {
          entries.sort(function (a, b) {
            return (RANK.indexOf(a[0].urgency) - RANK.indexOf(b[0].urgency)) || (a[0].id - b[0].id);
          });
          list.replaceChildren.apply(list, entries.map(function (e) { return listItem(e[0], e[1]); }));
          var unlocated = document.getElementById("map-unlocated");
          if (unlocated) {
            unlocated.hidden = !data.unlocated;
            unlocated.textContent = data.unlocated ? data.unlocated + " open incident(s) have no location and are not on the map: see the dispatch queue." : "";
          }
        }
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
