// RetroGuard caregiver dashboard: live updates over server-sent events, alarm and notifications.
(function () {
  "use strict";
  var csrf = document.body.dataset.csrf || "";
  var status = document.getElementById("live-status");
  var banner = document.getElementById("alarm-banner");
  var audio = null, alarmTimer = null;

  function fillCsrf(root) {
    root.querySelectorAll('input[name="csrf"]').forEach(function (i) { i.value = csrf; });
  }

  function ago(seconds) {
    if (seconds < 60) return "just now";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return Math.floor(seconds / 86400) + " days ago";
  }
  // Times reach the page in UTC; people read them in their own time zone (the browser's).
  function sameDay(a, b) { return a.toDateString() === b.toDateString(); }
  function localText(d) {
    var opts = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
    var time = d.toLocaleTimeString([], opts);
    return sameDay(d, new Date()) ? time : d.toLocaleDateString([], { day: "numeric", month: "short" }) + " " + time;
  }
  function localTimes(root) {
    (root || document).querySelectorAll("time.local[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d.getTime())) { el.textContent = localText(d); el.title = d.toString(); }
    });
  }
  function updateSince() {
    localTimes();
    var now = Date.now() / 1000;
    document.querySelectorAll(".since[data-since]").forEach(function (el) {
      var t = parseFloat(el.dataset.since);
      if (!isNaN(t)) el.textContent = "(" + ago(Math.max(0, now - t)) + ")";
    });
  }

  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    var el = t.content.firstElementChild;
    fillCsrf(t.content);
    return el;
  }

  function beep() {
    if (!audio) return;
    var t = audio.currentTime;
    [0, 0.35].forEach(function (dt) {
      var o = audio.createOscillator(), g = audio.createGain();
      o.type = "square"; o.frequency.value = 880;
      g.gain.setValueAtTime(0.25, t + dt); g.gain.setValueAtTime(0, t + dt + 0.25);
      o.connect(g); g.connect(audio.destination); o.start(t + dt); o.stop(t + dt + 0.3);
    });
  }
  function alarm(text, link) {
    document.getElementById("alarm-text").textContent = text;
    document.getElementById("alarm-link").setAttribute("href", link);
    banner.hidden = false;
    document.title = "\u26A0 " + text;
    beep();
    if (alarmTimer) clearInterval(alarmTimer);
    alarmTimer = setInterval(beep, 2000);
    if ("Notification" in window && Notification.permission === "granted") {
      var n = new Notification("RetroGuard", { body: text, tag: link, requireInteraction: true });
      n.onclick = function () { window.focus(); location.href = link; };
    }
  }
  function silence() {
    banner.hidden = true;
    if (alarmTimer) clearInterval(alarmTimer);
    alarmTimer = null;
    document.title = "RetroGuard caregiver";
  }
  document.getElementById("alarm-silence").addEventListener("click", silence);
  var enable = document.getElementById("enable-alerts");
  if (enable) enable.addEventListener("click", function () {
    try { audio = audio || new (window.AudioContext || window.webkitAudioContext)(); audio.resume(); } catch (e) { audio = null; }
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
    enable.textContent = "Alarm sound on";
    beep();
  });

  function onDevice(msg) {
    var old = document.getElementById("card-" + msg.device_id);
    var el = fragment(msg.html);
    if (old) { old.replaceWith(el); return; }
    var fleet = document.getElementById("fleet");
    if (fleet && fleet.dataset.page === "fleet") {
      var empty = document.getElementById("no-devices");
      if (empty) empty.remove();
      fleet.appendChild(el);
    }
  }
  function onEvent(msg) {
    var e = msg.event;
    var list = document.getElementById("timeline");
    var alertType = ["stumble", "fall", "no_recovery", "fault"].indexOf(e.type) >= 0;
    if (list && (list.dataset.device === e.device_id || (list.dataset.device === "*" && alertType))) {
      if (!list.querySelector('[data-event="' + e.id + '"]')) {
        var empty = list.querySelector(".empty");
        if (empty) empty.remove();
        list.insertBefore(fragment(msg.html), list.firstChild);
      }
    }
    if (e.severity === "critical") {
      alarm(e.type.replace("_", " ").toUpperCase() + " on " + msg.device_name, "/events/" + e.id);
    }
  }

  function onIncident(msg) {
    var list = document.getElementById("incidents");
    if (!list) return;
    var el = fragment(msg.html);
    var old = document.getElementById("incident-" + msg.incident);
    if (old) { old.replaceWith(el); return; }
    var empty = list.querySelector(".empty");
    if (empty) empty.remove();
    list.insertBefore(el, list.firstChild);
  }

  function onSession(msg) {
    var progress = document.getElementById("progress");
    if (progress && progress.dataset.device === msg.device_id) location.reload();
  }

  function connect() {
    var source = new EventSource("/stream");
    source.onopen = function () { status.textContent = "live"; document.body.dataset.live = "1"; };
    source.onerror = function () { status.textContent = "reconnecting\u2026"; document.body.dataset.live = "0"; };
    source.onmessage = function (m) {
      var msg = JSON.parse(m.data);
      if (msg.kind === "device") onDevice(msg);
      else if (msg.kind === "event") onEvent(msg);
      else if (msg.kind === "session") onSession(msg);
      else if (msg.kind === "incident") onIncident(msg);
      updateSince();
    };
  }

  // Acknowledge without leaving the page (the form also works without JavaScript).
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.matches || !form.matches(".ack-form, #ack-form")) return;
    ev.preventDefault();
    var button = form.querySelector("button");
    button.disabled = true; button.textContent = "Sending\u2026";
    fetch(form.action, { method: "POST", headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        silence();
        if (form.id === "ack-form") location.reload(); else button.textContent = "Acknowledged";
      })
      .catch(function (err) { button.disabled = false; button.textContent = "Acknowledge (failed: " + err.message + ")"; });
  });

  fillCsrf(document);
  updateSince();
  setInterval(updateSince, 15000);
  connect();
})();
