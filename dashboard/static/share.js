// The reporter's page: location, photos, live still frames and text over one WebSocket.
// Nothing starts until the person presses a button; "Stop sharing" ends all of it.
(function () {
  "use strict";
  var body = document.body;
  var token = body.getAttribute("data-token");
  var frameInterval = Math.max(250, parseInt(body.getAttribute("data-frame-interval"), 10) || 1000);
  var base = "/s/" + encodeURIComponent(token);
  var $ = function (id) { return document.getElementById(id); };

  var socket = null;
  var socketWanted = false;     // reconnect after a drop only while something is being shared
  var finished = false;         // stopped, or the server said the link is closed
  var pending = [];             // JSON messages waiting for the socket to open
  var watchId = null;
  var stream = null;
  var frameTimer = null;
  var framesSent = 0, framesStored = 0;
  var lastFixSent = 0;

  // The page's texts in the reporter's language (a JSON data block the server wrote).
  var T = {};
  try { T = JSON.parse($("page-texts").textContent); } catch (e) { T = {}; }
  function t(key, values) {
    var text = T[key] || key;
    Object.keys(values || {}).forEach(function (k) { text = text.split("{" + k + "}").join(String(values[k])); });
    return text;
  }

  function say(text) { $("status").textContent = text; }
  function readout(id, text, isError) {
    var el = $(id);
    el.hidden = false;
    el.textContent = text;
    el.className = isError ? "readout error" : "readout";
  }

  var closedReasons = {
    expired: t("closed_expired"), revoked: t("closed_revoked"), used: t("closed_used"), ended: t("stopped"),
    declined: t("closed_declined"), invalid: t("closed_invalid")
  };

  function connect() {
    if (finished || (socket && socket.readyState <= 1)) { return; }
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + base + "/ws");
    socket.binaryType = "arraybuffer";
    socket.onopen = function () {
      while (pending.length) { socket.send(pending.shift()); }
    };
    socket.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (msg.type === "ack") { onAck(msg); }
      else if (msg.type === "closed") { finish(closedReasons[msg.reason] || t("stopped")); }
      else if (msg.type === "error") { say(t("not_sent") + " (" + msg.detail + ")"); }
    };
    socket.onclose = function (event) {
      socket = null;
      if (finished) { return; }  // the server's "closed" message already said why
      if (event.code >= 4400 && event.code < 4500) { finish(t("stopped")); return; }
      if (socketWanted && !finished) {
        say(t("reconnecting"));
        setTimeout(connect, 2000);
      }
    };
  }

  function sendJson(obj) {
    var text = JSON.stringify(obj);
    if (socket && socket.readyState === 1) { socket.send(text); return; }
    pending.push(text);
    connect();
  }

  function onAck(msg) {
    if (msg.kind === "frame") {
      framesStored += 1;
      readout("live-readout", t("frames", { n: framesStored }));
    } else if (msg.kind === "location") {
      say(t("location_received"));
    } else if (msg.kind === "text") {
      readout("text-readout", t("text_received"));
    }
  }

  // ---------------------------------------------------------------- location
  function startLocation() {
    if (!("geolocation" in navigator)) { readout("location-readout", t("no_geo"), true); return; }
    socketWanted = true;
    connect();
    $("btn-location").classList.add("on");
    $("btn-location").textContent = t("sharing_location");
    readout("location-readout", t("finding"));
    watchId = navigator.geolocation.watchPosition(function (pos) {
      var c = pos.coords;
      readout("location-readout", t("accuracy", { m: Math.round(c.accuracy) }));
      var now = Date.now();
      if (now - lastFixSent < 1000) { return; }  // at most one fix a second: saves battery and data
      lastFixSent = now;
      sendJson({ type: "location", lat: c.latitude, lon: c.longitude, accuracy: c.accuracy,
                 altitude: c.altitude, heading: c.heading, speed: c.speed, ts: pos.timestamp });
    }, function (err) {
      readout("location-readout", err.code === 1 ? t("location_refused") : t("location_unavailable"), true);
    }, { enableHighAccuracy: true, maximumAge: 0, timeout: 30000 });
  }

  // ---------------------------------------------------------------- photos
  function sendPhotos(files) {
    Array.prototype.forEach.call(files, function (file) {
      var form = new FormData();
      form.append("photo", file, file.name || "photo.jpg");
      readout("photo-readout", t("sending_photo"));
      fetch(base + "/photo", { method: "POST", body: form, credentials: "same-origin" })
        .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (res) {
          if (res.ok) { readout("photo-readout", t("photo_received")); }
          else { readout("photo-readout", t("photo_failed") + (res.body.detail ? " (" + res.body.detail + ")" : ""), true); }
        })
        .catch(function () { readout("photo-readout", t("photo_offline"), true); });
    });
  }

  // ---------------------------------------------------------------- live camera as still frames
  function startLive() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      readout("live-readout", t("no_camera"), true); return;
    }
    socketWanted = true;
    connect();
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment", width: { ideal: 640 } }, audio: false })
      .then(function (s) {
        if (finished) { s.getTracks().forEach(function (t) { t.stop(); }); return; }
        stream = s;
        var video = $("preview");
        video.srcObject = s;
        video.hidden = false;
        $("btn-live").classList.add("on");
        $("btn-live").textContent = t("live_on");
        readout("live-readout", t("live_starting"));
        frameTimer = setInterval(sendFrame, frameInterval);
      })
      .catch(function (err) {
        readout("live-readout", err && err.name === "NotAllowedError" ? t("camera_refused") : t("camera_unavailable"), true);
      });
  }

  function sendFrame() {
    var video = $("preview");
    if (!socket || socket.readyState !== 1 || !video.videoWidth) { return; }
    // On a slow connection, skip a frame rather than queue a backlog: the latest picture matters most.
    if (socket.bufferedAmount > 256 * 1024) { return; }
    var canvas = $("frame-canvas");
    var scale = Math.min(1, 640 / video.videoWidth);
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    canvas.toBlob(function (blob) {
      if (!blob || !socket || socket.readyState !== 1) { return; }
      blob.arrayBuffer().then(function (buf) {
        var out = new Uint8Array(buf.byteLength + 1);
        out[0] = 1;  // frame marker
        out.set(new Uint8Array(buf), 1);
        if (socket && socket.readyState === 1) { socket.send(out.buffer); framesSent += 1; }
      });
    }, "image/jpeg", 0.6);
  }

  // ---------------------------------------------------------------- stop
  function stopDevices() {
    if (watchId !== null) { navigator.geolocation.clearWatch(watchId); watchId = null; }
    if (frameTimer !== null) { clearInterval(frameTimer); frameTimer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    $("preview").srcObject = null;
  }

  function finish(message) {
    finished = true;
    socketWanted = false;
    stopDevices();
    if (socket) { try { socket.close(1000); } catch (e) { /* already closed */ } socket = null; }
    $("sharing").hidden = true;
    $("stopped").hidden = false;
    $("stopped").querySelector("h1").textContent = message;
  }

  function stopSharing() {
    stopDevices();
    if (socket && socket.readyState === 1) { socket.send(JSON.stringify({ type: "stop" })); }
    // Also by plain HTTP, so "stop" is recorded even when the socket is down.
    fetch(base + "/stop", { method: "POST", credentials: "same-origin", keepalive: true })
      .finally(function () { finish(t("you_stopped")); });
  }

  $("btn-location").addEventListener("click", function () { if (watchId === null) { startLocation(); } });
  $("btn-live").addEventListener("click", function () { if (!stream) { startLive(); } });
  $("photo-input").addEventListener("change", function (e) { sendPhotos(e.target.files); e.target.value = ""; });
  $("text-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = $("text-input").value.trim();
    if (!text) { return; }
    sendJson({ type: "text", text: text });
    $("text-input").value = "";
    readout("text-readout", t("sending_text"));
  });
  $("btn-stop").addEventListener("click", stopSharing);
  window.addEventListener("pagehide", function () { stopDevices(); });
}());
