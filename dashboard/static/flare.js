/* Flare dashboard: live updates, one-click actions, keyboard shortcuts, alerts, media reveal.
 *
 * Safety rule for this file: text that came from the public is only ever rendered by the server
 * (Jinja autoescape) or set with textContent here. Fragments fetched from our own server are
 * parsed in an inert <template>, exactly as they would be on a full page load.
 */
(function () {
  "use strict";

  var body = document.body;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var page = body.dataset.page || "";

  // ------------------------------------------------------------------ small helpers
  function toast(text, level) {
    var el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text;
    el.className = "notice " + (level || "ok");
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, 6000);
  }

  function post(url, formData) {
    return fetch(url, {
      method: "POST", body: formData, credentials: "same-origin",
      headers: { "X-Requested-With": "flare", "X-CSRF-Token": csrf }
    });
  }

  function formatDuration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)), ss = String(s).padStart(2, "0");
    return (h ? h + ":" : "") + mm + ":" + ss;
  }

  function tickTimers() {
    var now = Date.now();
    document.querySelectorAll(".timer[data-since]").forEach(function (el) {
      var since = Date.parse(el.dataset.since);
      if (!isNaN(since)) el.textContent = formatDuration((now - since) / 1000);
    });
  }

  // ------------------------------------------------------------------ alert sound (WebAudio)
  var audio = null;
  function audioContext() {
    if (!audio && (window.AudioContext || window.webkitAudioContext)) {
      audio = new (window.AudioContext || window.webkitAudioContext)();
    }
    return audio;
  }
  function beep() {
    if (body.dataset.muted === "1") return;
    var ctx = audioContext();
    if (!ctx) return;
    if (ctx.state === "suspended") {
      var unlock = document.getElementById("sound-unlock");
      if (unlock) unlock.hidden = false;  // browsers only allow sound after a click
      ctx.resume();
    }
    [0, 0.28].forEach(function (offset) {
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, ctx.currentTime + offset);
      gain.gain.exponentialRampToValueAtTime(0.25, ctx.currentTime + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + offset + 0.22);
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + offset);
      osc.stop(ctx.currentTime + offset + 0.24);
    });
  }
  document.addEventListener("click", function () {
    var ctx = audio;
    if (ctx && ctx.state === "suspended") ctx.resume();
  }, { capture: true });
  var unlockButton = document.getElementById("sound-unlock");
  if (unlockButton) unlockButton.addEventListener("click", function () {
    var ctx = audioContext();
    if (ctx) ctx.resume().then(function () { unlockButton.hidden = true; });
  });

  function showAlert(text, href) {
    var banner = document.getElementById("alert-banner");
    if (!banner) return;
    banner.replaceChildren();
    var msg = document.createElement(href ? "a" : "span");
    msg.textContent = text;
    if (href) msg.href = href;
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = "Dismiss";
    close.addEventListener("click", function () { banner.hidden = true; document.title = baseTitle; });
    banner.append(msg, close);
    banner.hidden = false;
    document.title = "(!) " + baseTitle;
  }
  var baseTitle = document.title;

  // ------------------------------------------------------------------ fragment refresh
  var refreshUrl = body.dataset.refresh || "";
  var refreshing = false, refreshAgain = false, refreshTimer = null, leaving = false;
  // One-click actions still waiting for their answer: a refresh that finds the session ended
  // leaves the navigation to them, so a reload never cancels an action before it is kept.
  var actionsInFlight = 0, navigating = false;

  function container() { return document.querySelector("[data-fragment]"); }

  function scheduleRefresh(delay) {
    if (!refreshUrl) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, delay === undefined ? 150 : delay);
  }

  function refresh() {
    var target = container();
    if (!target || leaving) return;
    // Never pull the list out from under someone choosing from a menu in it.
    if (target.contains(document.activeElement) && /^(SELECT|INPUT|TEXTAREA)$/.test(document.activeElement.tagName)) {
      scheduleRefresh(1500);
      return;
    }
    if (refreshing) { refreshAgain = true; return; }
    refreshing = true;
    var selected = target.querySelector(".selected");
    var selectedId = selected ? selected.dataset.postId : null;
    fetch(refreshUrl, { credentials: "same-origin", headers: { "X-Requested-With": "flare" } })
      .then(function (r) {
        if (r.status === 401 || r.redirected) {
          if (!leaving) { leaving = true; if (actionsInFlight === 0) window.location.reload(); }
          throw new Error("signed out");
        }
        if (!r.ok) {
          // The degraded queue refused (Redis, this sign-in's copy): its full page says why.
          if (page === "queue-degraded" && !leaving) { leaving = true; window.location.reload(); }
          throw new Error("HTTP " + r.status);
        }
        return r.text();
      })
      .then(function (html) {
        var tpl = document.createElement("template");
        tpl.innerHTML = html;  // server-rendered and autoescaped; inert until attached
        // The database answers again: the degraded queue gives way to the normal one.
        if (page === "queue-degraded" && !tpl.content.querySelector("#degraded-banner")) {
          if (!leaving) { leaving = true; window.location.reload(); }
          return;
        }
        if (page === "queue-degraded") liveBack();
        target.replaceChildren(tpl.content);
        if (selectedId) {
          var again = target.querySelector('[data-post-id="' + CSS.escape(selectedId) + '"]');
          if (again) again.classList.add("selected");
        }
        document.dispatchEvent(new CustomEvent("flare:refreshed"));
        tickTimers();
      })
      .catch(function (err) {
        // The next event or the fallback poll retries. The degraded queue has no live connection
        // to say so: a refresh that reached nobody says the screen may be out of date.
        if (page === "queue-degraded" && err instanceof TypeError) liveLost();
      })
      .finally(function () {
        refreshing = false;
        if (refreshAgain) { refreshAgain = false; scheduleRefresh(); }
      });
  }

  // ------------------------------------------------------------------ live connection (SSE)
  var statusEl = document.getElementById("live-status");
  function setStatus(state, text) {
    if (!statusEl) return;
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }
  var fallbackPoll = null;
  // Clock times in the service's zone, 24-hour, like every time the server prints.
  function hhmm(date) {
    var options = { hour: "2-digit", minute: "2-digit", hour12: false };
    try {
      return new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: body.dataset.tz || undefined }, options)).format(date);
    } catch (err) {
      return new Intl.DateTimeFormat("en-GB", options).format(date);
    }
  }
  // Screens nobody sits at (the wall display) say loudly when their live connection is gone and
  // since when, so nobody trusts a frozen list; the banner goes once the stream is back.
  var lostBanner = body.hasAttribute("data-live-banner") ? document.getElementById("live-lost") : null;
  var lostSince = null;
  function liveLost() {
    if (!lostBanner || lostSince) return;
    lostSince = new Date();
    document.getElementById("live-lost-since").textContent = hhmm(lostSince);
    lostBanner.hidden = false;
  }
  function liveBack() {
    lostSince = null;
    if (lostBanner) lostBanner.hidden = true;
  }
  document.addEventListener("flare:refreshed", function () {
    var stamp = document.getElementById("wall-updated-at");
    if (stamp) stamp.textContent = hhmm(new Date());
  });
  function connect() {
    if (!window.EventSource || !statusEl) return;
    var source = new EventSource("/live/events");
    source.addEventListener("hello", function () {
      setStatus("live", "● live");
      liveBack();
      if (fallbackPoll) { clearInterval(fallbackPoll); fallbackPoll = null; scheduleRefresh(0); }
    });
    source.addEventListener("live", function (e) {
      var payload;
      try { payload = JSON.parse(e.data); } catch (err) { return; }
      document.dispatchEvent(new CustomEvent("flare:live", { detail: payload }));
    });
    function pollWhileDown() {
      setStatus("down", "reconnecting…");
      liveLost();
      // Keep the screen current while live updates are down. Every 2 s: an incident queued while
      // Redis (and so the live channel) is down is on screen within seconds of reaching the database.
      if (!fallbackPoll) fallbackPoll = setInterval(function () { scheduleRefresh(0); }, 2000);
    }
    // The server's own channel went away while this connection stays open (Redis restarting).
    source.addEventListener("lost", pollWhileDown);
    source.addEventListener("back", function () {
      setStatus("live", "● live");
      liveBack();
      if (fallbackPoll) { clearInterval(fallbackPoll); fallbackPoll = null; }
      scheduleRefresh(0);
    });
    source.onerror = function () {
      pollWhileDown();
      // A refused reconnection (a proxy's 502, a restart mid-handshake) closes the stream for
      // good; open a new one rather than stay silent. EventSource reconnects by itself otherwise.
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
    };
  }

  document.addEventListener("flare:live", function (e) {
    var p = e.detail || {};
    // A field unit's incident detail is read-only: it simply reloads when its incident changes.
    if (page === "field-incident") {
      var shown = document.getElementById("field-incident");
      if (shown && String(p.incident_id) === shown.dataset.incident) {
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(function () { window.location.reload(); }, 300);
      }
      return;
    }
    if (page === "incident") {
      if (String(p.incident_id) === body.dataset.incident) {
        var changed = document.getElementById("incident-changed");
        if (changed) changed.hidden = false;
        if (p.type === "acknowledged") {
          var st = document.getElementById("incident-status");
          if (st) st.textContent = "acknowledged by " + String(p.by || "");
        }
      }
      return;
    }
    if (page === "queue" && p.type === "escalation" && p.sound) {
      beep();
      showAlert("Escalation: incident #" + Number(p.incident_id) + " (" + String(p.urgency || "") + ") still needs a dispatcher",
        "/incidents/" + Number(p.incident_id));
    }
    scheduleRefresh();
  });

  // New critical incidents on the queue, and incidents back in front of a dispatcher (a new report
  // after an acknowledgement, the reporter replied): visual alert always, sound unless muted.
  // An incident that leaves the waiting set and comes back alerts again.
  // While the database refuses, the rows come from Redis (dashboard/degraded.py), on the degraded
  // page or refreshed into this one: the incidents waiting in the dispatch stream (the same ids, so
  // switching to and from them alerts on nothing already shown) and provisional reports, a critical
  // one alerting as a new critical incident does, named by the text triage read (set as text).
  var waitingBefore = null;
  function alertWhy(row) {
    if (row.querySelector(".flag.new-report")) return "New report on incident #";
    if (row.querySelector(".flag.replied")) return "Reporter replied on incident #";
    if (row.dataset.urgency === "critical") return "New critical incident #";
    return "";
  }
  function clip(text, most) {
    var chars = Array.from(text);
    return chars.length > most ? chars.slice(0, most).join("") + "…" : text;
  }
  function provisionalAlert(row) {
    if (row.dataset.urgency !== "critical") return null;
    var words = row.querySelector(".words");
    return { text: "New provisional critical report (" + String(row.dataset.platform || "") + "): " +
                   clip(words ? words.textContent.trim() : "", 200),
             href: null, provisional: true };
  }
  function checkCritical() {
    if (page !== "queue" && page !== "queue-degraded") return;
    var waiting = new Map();
    document.querySelectorAll('tr[data-incident][data-status="queued"], tr[data-incident][data-waiting]').forEach(function (row) {
      var why = alertWhy(row);
      // (an incident's page cannot open while the database refuses: no link from its waiting row)
      if (why) waiting.set(row.dataset.incident, { text: why + row.dataset.incident,
        href: row.hasAttribute("data-waiting") ? null : "/incidents/" + row.dataset.incident });
    });
    document.querySelectorAll("tr[data-provisional]").forEach(function (row) {
      var alert = provisionalAlert(row);
      if (alert) waiting.set("provisional:" + row.dataset.provisional, alert);
    });
    if (waitingBefore === null) {
      waitingBefore = waiting;
      var reports = 0;
      waiting.forEach(function (a) { if (a.provisional) reports += 1; });
      var incidents = waiting.size - reports;
      if (waiting.size) {
        showAlert([incidents ? incidents + " incident(s)" : "", reports ? reports + " provisional critical report(s)" : ""]
          .filter(Boolean).join(" and ") + " waiting for a dispatcher", "#queue");
      }
      return;
    }
    var fresh = [];
    waiting.forEach(function (alert, key) { if (!waitingBefore.has(key)) fresh.push(alert); });
    waitingBefore = waiting;
    if (fresh.length) {
      beep();
      showAlert(fresh.map(function (f) { return f.text; }).join("; "), fresh[0].href);
    }
  }
  document.addEventListener("flare:refreshed", checkCritical);

  // ------------------------------------------------------------------ actions sent as the session ends
  // A form sent just as the session expired is kept (this tab only) and offered again after
  // sign-in: never lost silently, never replayed unasked.
  function describeForm(form, submitter) {
    var fields = [];
    new FormData(form).forEach(function (value, key) {
      if (key !== "csrf_token" && typeof value === "string") fields.push([key, value]);
    });
    var button = submitter || form.querySelector("button[type=submit], button:not([type])");
    var action = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action") || location.pathname;
    return { action: action, fields: fields, label: button ? button.textContent.trim() : "form",
             page: location.pathname + location.search, at: Date.now() };
  }
  function keepable(form) {
    var action = form.getAttribute("action") || "";
    return (form.method || "").toLowerCase() === "post" && !/^\/(login|logout)$/.test(action) &&
      !form.querySelector("input[type=password], input[type=file]");
  }
  function stash(key, value) {
    try { sessionStorage.setItem(key, JSON.stringify(value)); } catch (err) { /* storage full or off */ }
  }
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.hasAttribute && !form.hasAttribute("data-fetch") && keepable(form)) stash("flare:inflight", describeForm(form, e.submitter));
  }, true);

  function offerUnsent() {
    var raw = null, item = null;
    try { sessionStorage.removeItem("flare:inflight"); raw = sessionStorage.getItem("flare:unsent"); } catch (err) { return; }
    if (!raw) return;
    try { item = JSON.parse(raw); } catch (err) { item = null; }
    if (!item || !item.action || Date.now() - item.at > 2 * 3600 * 1000) { sessionStorage.removeItem("flare:unsent"); return; }
    var box = document.createElement("div");
    box.id = "unsent-action";
    box.className = "notice error";
    box.setAttribute("role", "alert");
    var text = document.createElement("p");
    var when = new Date(item.at);
    text.textContent = "Not sent: “" + item.label + "” (" + item.action + ", from " + item.page + " at " +
      String(when.getHours()).padStart(2, "0") + ":" + String(when.getMinutes()).padStart(2, "0") +
      ") — your session had expired. Check it still applies, then send it or discard it.";
    var send = document.createElement("button");
    send.type = "button";
    send.textContent = "Send it now";
    var discard = document.createElement("button");
    discard.type = "button";
    discard.className = "secondary";
    discard.textContent = "Discard";
    discard.addEventListener("click", function () { sessionStorage.removeItem("flare:unsent"); box.remove(); });
    send.addEventListener("click", function () {
      var data = new FormData();
      item.fields.forEach(function (kv) { data.append(kv[0], kv[1]); });
      data.append("csrf_token", csrf);
      send.disabled = true;
      post(item.action, data).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (res) {
          if (r.ok && res.ok) { sessionStorage.removeItem("flare:unsent"); box.remove(); toast(res.message || "Sent.", "ok"); scheduleRefresh(0); }
          else { send.disabled = false; toast(res.detail || ("Failed (HTTP " + r.status + ")"), "error"); }
        });
      }).catch(function () { send.disabled = false; toast("Could not reach Flare.", "error"); });
    });
    box.append(text, send, document.createTextNode(" "), discard);
    var main = document.getElementById("main");
    if (main) main.prepend(box);
  }

  // ------------------------------------------------------------------ one-click actions
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.hasAttribute || !form.hasAttribute("data-fetch")) return;
    e.preventDefault();
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    var described = describeForm(form, e.submitter);
    // Kept before sending: if the page is sent to the sign-in page meanwhile, it is not lost.
    stash("flare:inflight", described);
    actionsInFlight += 1;
    post(form.action, new FormData(form))
      .then(function (r) {
        if (r.status !== 401) { try { sessionStorage.removeItem("flare:inflight"); } catch (err) { /* off */ } }
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (r.status === 401) {  // signed out meanwhile: keep the action, sign in, come back
            stash("flare:unsent", described);
            leaving = navigating = true;  // one navigation to the sign-in page, not a reload racing it
            window.location.assign("/login?" + (data.expired ? "expired=1&" : "") + "next=" +
              encodeURIComponent(location.pathname + location.search));
            return;
          }
          if (r.ok && data.ok) toast(data.message || "Done.", "ok");
          else if (r.status === 403) toast("Not allowed: " + (data.detail || "your role cannot do this"), "error");
          else toast(data.detail || ("Failed (HTTP " + r.status + ")"), "error");
        });
      })
      .catch(function () { toast("Could not reach Flare. Check the connection and try again.", "error"); })
      .finally(function () {
        actionsInFlight -= 1;
        buttons.forEach(function (b) { b.disabled = false; });
        // A refresh found the session ended while this action was out: now it may reload.
        if (leaving && !navigating && actionsInFlight === 0) window.location.reload();
        else scheduleRefresh(0);
      });
  });

  // ------------------------------------------------------------------ graphic media reveal
  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("button.reveal") : null;
    if (!button) return;
    var figure = button.closest("figure");
    button.disabled = true;
    post(button.dataset.reveal, new FormData())
      .then(function (r) {
        if (r.ok) return r.json();
        // The server says why (e.g. not archived yet): shown as text, never as markup.
        return r.json().catch(function () { return {}; }).then(function (d) {
          throw new Error(typeof d.detail === "string" ? d.detail : "Could not load the media.");
        });
      })
      .then(function (data) {
        var media = document.createElement(data.kind === "video" ? "video" : "img");
        if (data.kind === "video") media.controls = true; else media.alt = "Media attached by the reporter";
        media.src = data.url;
        media.referrerPolicy = "no-referrer";
        var hide = document.createElement("button");
        hide.type = "button";
        hide.className = "secondary";
        hide.textContent = "Hide again";
        hide.addEventListener("click", function () { media.remove(); hide.remove(); button.disabled = false; figure.querySelector(".cw").hidden = false; });
        figure.querySelector(".cw").hidden = true;
        figure.append(media, hide);
        var count = document.getElementById("exposure-count");
        if (count && typeof data.exposure === "number") {
          count.textContent = String(data.exposure);
          var hint = document.getElementById("break-hint");
          if (hint) hint.hidden = data.exposure < parseInt(count.dataset.breakAt || "10", 10);
        }
      })
      .catch(function (err) { button.disabled = false; toast(err.message || "Could not load the media.", "error"); });
  });

  // ------------------------------------------------------------------ keyboard (dispatch queue)
  // "a" acknowledges the top unacknowledged critical incident (rows are most urgent first).
  document.addEventListener("keydown", function (e) {
    if (page !== "queue" || e.key !== "a" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^(INPUT|TEXTAREA|SELECT)$/.test((e.target.tagName || ""))) return;
    var form = document.querySelector('#queue-rows tr[data-urgency="critical"][data-status="queued"] form[action$="/acknowledge"]');
    e.preventDefault();
    if (!form) { toast("No unacknowledged critical incident.", "info"); return; }
    var row = form.closest("tr");
    row.scrollIntoView({ block: "nearest" });
    form.requestSubmit();
  });

  // ------------------------------------------------------------------ keyboard (monitor feed)
  function posts() { return Array.prototype.slice.call(document.querySelectorAll("#feed-list li.post")); }
  function move(step) {
    var list = posts();
    if (!list.length) return;
    var i = list.findIndex(function (li) { return li.classList.contains("selected"); });
    var next = list[Math.min(list.length - 1, Math.max(0, i + step))] || list[0];
    list.forEach(function (li) { li.classList.remove("selected"); });
    next.classList.add("selected");
    next.focus({ preventScroll: true });
    next.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    if (page !== "feed" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^(INPUT|TEXTAREA|SELECT)$/.test((e.target.tagName || ""))) return;
    var help = document.getElementById("help");
    if (e.key === "?") { if (help && help.showModal) help.showModal(); e.preventDefault(); return; }
    if (e.key === "j") { move(1); return; }
    if (e.key === "k") { move(-1); return; }
    var selected = document.querySelector("#feed-list li.post.selected");
    if (!selected) return;
    if (e.key === "o") { var link = selected.querySelector("a.incident-link"); if (link) link.click(); return; }
    var button = selected.querySelector('button[data-key="' + e.key + '"]');
    if (button) { e.preventDefault(); button.form.requestSubmit(button); }
  });
  var helpOpen = document.getElementById("help-open");
  if (helpOpen) helpOpen.addEventListener("click", function () { document.getElementById("help").showModal(); });
  document.addEventListener("click", function (e) {
    var li = e.target.closest ? e.target.closest("#feed-list li.post") : null;
    if (!li) return;
    posts().forEach(function (x) { x.classList.remove("selected"); });
    li.classList.add("selected");
  });

  // ------------------------------------------------------------------ small page helpers
  // Reply templates come in the chosen reporter's language (as triage read their post); the
  // dispatcher may pick another. Changing either refills a message only while it is a template.
  var templatePicker = document.getElementById("reply-template");
  var replyLanguage = document.getElementById("reply-language");
  var replyTo = document.getElementById("reply-to");
  var replyText = document.getElementById("reply-text");
  var lastTemplateText = null;
  function fillTemplate() {
    var option = templatePicker.selectedOptions[0];
    if (!option || !option.dataset.text) return;
    if (replyText.value && replyText.value !== lastTemplateText) return;  // never overwrite their own words
    var texts = {};
    try { texts = JSON.parse(option.dataset.texts || "{}"); } catch (err) { texts = {}; }
    var lang = replyLanguage ? replyLanguage.value : "en";
    replyText.value = texts[lang] || option.dataset.text;
    lastTemplateText = replyText.value;
  }
  if (templatePicker) templatePicker.addEventListener("change", function () {
    if (replyText.value === lastTemplateText) replyText.value = "";
    fillTemplate();
  });
  if (replyLanguage) replyLanguage.addEventListener("change", fillTemplate);
  if (replyTo && replyLanguage) replyTo.addEventListener("change", function () {
    var option = replyTo.selectedOptions[0];
    if (option && option.dataset.lang) replyLanguage.value = option.dataset.lang;
    fillTemplate();
  });
  var locate = document.getElementById("use-my-location");
  if (locate) locate.addEventListener("click", function () {
    if (!navigator.geolocation) { toast("This device cannot share its location.", "error"); return; }
    navigator.geolocation.getCurrentPosition(function (pos) {
      document.querySelector('input[name="lat"]').value = pos.coords.latitude.toFixed(5);
      document.querySelector('input[name="lon"]').value = pos.coords.longitude.toFixed(5);
    }, function () { toast("Location not available; type it in.", "error"); });
  });

  // Idle sign-out: live refreshes do not count as activity on the server, so an unattended screen
  // is reloaded once the idle time has passed and the server sends it to the sign-in page.
  var idleSeconds = parseInt(body.dataset.idle || "0", 10);
  if (idleSeconds > 0) {
    var lastActivity = Date.now();
    ["keydown", "mousedown", "touchstart", "scroll"].forEach(function (name) {
      document.addEventListener(name, function () { lastActivity = Date.now(); }, { passive: true, capture: true });
    });
    setInterval(function () {
      if (Date.now() - lastActivity > (idleSeconds + 5) * 1000) window.location.reload();
    }, 15000);
  }

  // Screens whose numbers age with time (the supervisor's) also refresh on a clock, not only on events.
  var refreshEvery = parseInt(body.dataset.refreshEvery || "0", 10);
  if (refreshEvery > 0) setInterval(function () { scheduleRefresh(0); }, refreshEvery * 1000);

  tickTimers();
  setInterval(tickTimers, 1000);
  offerUnsent();
  checkCritical();
  connect();
})();
