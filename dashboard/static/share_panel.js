// Reporter-sharing panel: fetches the incident's share state whenever the live channel says
// something arrived (publish_live -> SSE -> "flare:live" DOM event), and on a slow timer as a
// fallback. Media stay blurred until revealed; the reveal is logged server-side.
(function () {
  "use strict";
  var panel = document.getElementById("share-panel");
  if (!panel) { return; }
  var incident = panel.getAttribute("data-incident");
  var csrf = panel.getAttribute("data-csrf");
  var base = "/incidents/" + encodeURIComponent(incident);
  var liveShown = {};   // link id -> figure element
  var photoShown = {};  // item id -> figure element
  var FALLBACK_POLL_MS = 3000;
  var inFlight = false, again = false;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function clock(iso) { return iso ? new Date(iso).toLocaleTimeString() : ""; }
  function post(url) {
    return fetch(url, { method: "POST", credentials: "same-origin",
                        headers: { "X-CSRF-Token": csrf, "X-Requested-With": "flare" } });
  }

  function mediaFigure(url, itemId, revealed, caption) {
    var fig = el("figure", "share-media");
    var img = el("img", revealed ? "" : "blurred");
    img.alt = "Shared by the reporter";
    img.src = url;
    img.setAttribute("data-item", String(itemId));
    var frame = el("div", "share-frame");  // clips the blur so it never smears over the caption
    frame.appendChild(img);
    fig.appendChild(frame);
    if (!revealed) {
      var button = el("button", "reveal", "Reveal");
      button.type = "button";
      var doReveal = function () {
        post(base + "/share/media/" + img.getAttribute("data-item") + "/reveal").then(function (r) {
          if (r.ok) { img.className = ""; button.remove(); fig.setAttribute("data-revealed", "1"); }
        });
      };
      button.addEventListener("click", doReveal);
      img.addEventListener("click", doReveal);
      frame.appendChild(button);
    } else {
      fig.setAttribute("data-revealed", "1");
    }
    fig.appendChild(el("figcaption", "", caption));
    return fig;
  }

  var DELIVERY = { queued: "waiting to be sent", sent: "delivered to the platform", failed: "NOT DELIVERED",
                   none: "not sent: give it to the reporter yourself" };

  function copyText(text, button) {
    function done(ok) {
      button.textContent = ok ? "Copied" : "Select and copy";
      setTimeout(function () { button.textContent = "Copy link"; }, 2000);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
      return;
    }
    done(false);
  }

  var shownLinks = "";
  function renderLinks(links) {
    var list = document.getElementById("share-links");
    var now = JSON.stringify(links);
    if (now === shownLinks) { return; }  // unchanged: keep the dispatcher's selection and focus
    shownLinks = now;
    list.textContent = "";
    links.forEach(function (link) {
      var li = el("li");
      li.setAttribute("data-link", String(link.id));
      li.appendChild(el("span", "", "Link #" + link.id + " (" + link.sent_as.replace("_", " ") + ") · " + link.status +
        " · expires " + clock(link.expires_at)));
      var delivery = link.delivery || { status: "none", error: "" };
      var shown = el("span", "share-delivery d-" + delivery.status,
        "delivery: " + (DELIVERY[delivery.status] || delivery.status) + (delivery.error ? " (" + delivery.error + ")" : ""));
      li.appendChild(shown);
      if (link.url) {
        var url = el("input", "share-url");
        url.type = "text";
        url.readOnly = true;
        url.value = link.url;
        url.setAttribute("aria-label", "Share link #" + link.id);
        url.addEventListener("focus", function () { url.select(); });
        li.appendChild(url);
        var copy = el("button", "link share-copy", "Copy link");
        copy.type = "button";
        copy.addEventListener("click", function () { url.select(); copyText(link.url, copy); });
        li.appendChild(copy);
      }
      if (["sent", "opened", "sharing"].indexOf(link.status) >= 0) {
        var b = el("button", "link", "Revoke");
        b.type = "button";
        b.addEventListener("click", function () { post(base + "/share-link/" + link.id + "/revoke").then(poll); });
        li.appendChild(b);
      }
      list.appendChild(li);
    });
  }

  function renderLocation(loc) {
    var p = document.getElementById("share-location");
    if (!loc) { return; }
    p.className = "share-location";
    p.textContent = loc.lat.toFixed(6) + ", " + loc.lon.toFixed(6) + " · accuracy ±" + Math.round(loc.accuracy_m) +
      " m · " + clock(loc.at) + " (" + Math.round(loc.age_s) + " s ago)";
    p.setAttribute("data-lat", String(loc.lat));
    p.setAttribute("data-lon", String(loc.lon));
  }

  function renderLive(live) {
    var box = document.getElementById("share-live");
    if (!live.length) { return; }
    var empty = box.querySelector(".share-empty");
    if (empty) { empty.remove(); }
    live.forEach(function (stream) {
      var caption = (stream.active ? "LIVE" : "ended") + " · link #" + stream.link_id + " · " + stream.frames +
        " frames · last " + clock(stream.latest.at);
      var fig = liveShown[stream.link_id];
      if (!fig) {
        fig = mediaFigure(stream.latest.url, stream.latest.id, stream.revealed, caption);
        fig.id = "share-live-" + stream.link_id;
        liveShown[stream.link_id] = fig;
        box.appendChild(fig);
        return;
      }
      var img = fig.querySelector("img");
      if (img.getAttribute("data-item") !== String(stream.latest.id)) {
        img.src = stream.latest.url;
        img.setAttribute("data-item", String(stream.latest.id));
      }
      fig.querySelector("figcaption").textContent = caption;
    });
  }

  function renderPhotos(photos) {
    var box = document.getElementById("share-photos");
    if (!photos.length) { return; }
    var empty = box.querySelector(".share-empty");
    if (empty) { empty.remove(); }
    photos.forEach(function (photo) {
      if (photoShown[photo.id]) { return; }
      var fig = mediaFigure(photo.url, photo.id, photo.revealed, clock(photo.at) + " · sha256 " + photo.sha256.slice(0, 12));
      photoShown[photo.id] = fig;
      box.appendChild(fig);
    });
  }

  function renderTexts(texts) {
    var list = document.getElementById("share-texts");
    list.textContent = "";
    texts.forEach(function (t) { list.appendChild(el("li", "", clock(t.at) + " — " + t.text)); });
  }

  function poll() {
    // One request at a time; a burst of live events collapses into one more fetch.
    if (inFlight) { again = true; return Promise.resolve(); }
    inFlight = true;
    return fetch(base + "/share/state", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (!state) { return; }
        renderLinks(state.links);
        renderLocation(state.location);
        renderLive(state.live);
        renderPhotos(state.photos);
        renderTexts(state.texts);
      })
      .catch(function () { /* the next event or timer retries */ })
      .then(function () {
        inFlight = false;
        if (again) { again = false; poll(); }
      });
  }

  document.addEventListener("flare:live", function (e) {
    var p = e.detail || {};
    if (p.type === "share_update" && String(p.incident_id) === String(incident)) { poll(); }
  });
  poll();
  setInterval(poll, FALLBACK_POLL_MS);
}());
