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
  function updateSince(root) {
    var now = Date.now() / 1000;
    (root || document).querySelectorAll(".since[data-since]").forEach(function (el) {
      var t = parseFloat(el.dataset.since);
      if (!isNaN(t)) el.textContent = "(" + ago(Math.max(0, now - t)) + ")";
    });
  }

  // The live feed sends data (caregiver/feed.py); these build the same markup as the
  // server's templates (_card.html, _event_row.html, _incident_row.html) for the first load.
  function node(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return el;
  }
  function spaced(items) {  // inline elements with the templates' whitespace between them
    var out = [];
    items.forEach(function (c) { if (c) { if (out.length) out.push(" "); out.push(c); } });
    return out;
  }
  function timeEl(m) {
    return m ? node("time", { datetime: m.iso, "data-format": m.format }, [m.text]) : null;
  }
  function since(t) { return node("span", { "class": "since", "data-since": String(t) }); }
  // A plan's or a treadmill's name (or words with one) with each hyphen kept with the digit
  // after it, as the server's hyphened filter renders them (caregiver/routes/site.py): a
  // phone's card read "walk-backward-slowly-week-" over "12", "physiotherapy-room-" over "2-east".
  // Every name the pages show goes through it: card and banner, the "Still open" links, the
  // timeline's and the recent alerts' rows.
  function hyphened(text) {
    return text.split(/(-\d)/).map(function (part, n) {
      return n % 2 ? node("span", { "class": "nowrap" }, [part]) : part;
    });
  }
  function setHyphened(el, text) {
    el.textContent = "";
    hyphened(text).forEach(function (part) { el.append(part); });
  }
  // "— received 14:52:40 (held 20 min by the treadmill)" after a row's time (story.Stamped)
  function late(x) {
    return x.late ? [" ", node("span", { "class": "received" },
      ["— received ", timeEl(x.received_when), " (" + x.late + ")"])] : [];
  }
  function finish(el) {
    if (window.retroguardLocalTime) window.retroguardLocalTime(el);
    updateSince(el);  // only the new element: the whole page every 15 s
    return el;
  }
  function renderCard(id, c) {
    var h = c.headline;
    var seen = c.offline ? node("p", { "class": "seen" }, ["Monitor offline"].concat(
      c.last_seen ? [" \u2014 last seen ", timeEl(c.last_seen_at), " ", since(c.last_seen)] : [])) : null;
    // the Acknowledge says what this card shows (caregiver/seen.py): current with each card
    var ack = c.can_acknowledge ? node("form", { method: "post", action: "/devices/" + encodeURIComponent(id) + "/ack", "class": "ack-form" }, [
      node("input", { type: "hidden", name: "csrf", value: csrf }),
      node("input", { type: "hidden", name: "incident", value: c.seen.incident }),
      node("input", { type: "hidden", name: "seen", value: c.seen.seen }),
      node("input", { type: "hidden", name: "alerts", value: c.seen.alerts }),
      node("button", { type: "submit", "class": "btn btn-big btn-ack" }, ["Acknowledge"])]) : null;
    return finish(node("article", { "class": "card level-" + c.level, id: "card-" + id, "data-device": id, "data-level": c.level }, [
      // shown only while the feed is lost (app.css: body[data-live="0"]); words: base.html's
      node("span", { "class": "card-stale" }, [document.body.dataset.notLive || ""]),
      node("h2", {}, [node("a", { href: "/devices/" + encodeURIComponent(id) }, hyphened(c.name))]),
      h ? node("p", { "class": "headline" + (h.open ? " headline-open" : "") },
        [node("a", { href: h.link }, [h.text]), " ", since(h.since)]) : null,
      node("p", { "class": "belt" }, [c.belt]),
      c.plan ? node("p", { "class": "plan plan-words" }, hyphened(c.plan)) : null,  // the walker's plan
      seen,
      node("p", { "class": "links" }, [node("a", { href: "/devices/" + encodeURIComponent(id) + "/progress" }, ["Walking progress"])]),
      ack]));
  }
  function renderEvent(e, deviceName) {
    var attrs = { "class": "event sev-" + e.severity, "data-event": e.id, "data-type": e.type };
    if (e.joined) attrs["data-press"] = e.incident;  // a press's "I'm OK" or re-arming
    return finish(node("li", attrs, [
      node("a", { href: "/events/" + e.id }, spaced([
        node("strong", { "class": "etype" }, [e.title]),
        node("span", { "class": "edevice" }, hyphened(deviceName)),
        // the device's clock was not set: when the service received it, said so (story.py);
        // held by the treadmill (an outage): when it happened, and when it was received
        node("span", { "class": "ewhen" }, e.received
          ? ["received ", timeEl(e.when), " ", node("span", { "class": "clock-unsynced" }, ["— " + e.received])]
          : [timeEl(e.when)].concat(late(e))),
        since(e.since != null ? e.since : e.received_at),
        node("span", { "class": "ereason" }, [e.text]),
        e.acked_by ? node("span", { "class": "eack" }, ["acknowledged by " + e.acked_by]) : null]))]));
  }
  function renderIncident(id, r) {
    return finish(node("li", { "class": "incident sev-" + r.severity, id: "incident-" + id, "data-incident": id, "data-opened-at": String(r.opened_at) }, [
      node("a", { href: r.link }, spaced([
        node("strong", { "class": "etype" }, [r.text]),
        node("span", { "class": "edevice" }, hyphened(r.device_name)),
        node("span", { "class": "ewhen" }, r.received
          ? ["received ", timeEl(r.opened), " ", node("span", { "class": "clock-unsynced" }, ["— " + r.received])]
          : [timeEl(r.opened)].concat(late(r))),
        since(r.since != null ? r.since : r.opened_at)]))]));
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
  // The banner, the tab's title and the beeping: one at a time, the newest ("+N more" counts
  // the other alarms sounding with it, each reachable from it: moreOf).
  // On the event page of the incident it alarms for, "Open" would open the page already
  // open: it is hidden there (``incident``: the alarm's; a page's is on its event-detail).
  var named = "";  // the incident the banner names (its text and Open)
  function showAlarm(text, link, more, incident, event) {
    nameAlarm(text, link, more, incident, event);
    if (banner.hidden && staleNotice()) replaceNotice();
    else banner.hidden = false;
    beep();
    if (alarmTimer) clearInterval(alarmTimer);
    alarmTimer = setInterval(beep, 2000);
    showAlarmSound();
    refreshStillOpen();
  }
  // A new alarm after an acknowledgement (or an answer elsewhere): the green notice in the
  // banner's room is stale, and the banner shown above it pushed the new alarm's card down
  // by the banner's height (a phone's Acknowledge at y=915 of 740, under the red banner and
  // the notice, two Silence buttons on screen). The banner takes the notice's room instead:
  // the notice goes, and what followed it stays where it was (the banner's margin makes up
  // a shorter banner; nothing moves up under the thumb). A notice listing alerts still open
  // stays: it names what the banner may not (amber alerts, alarms silenced from it, the
  // others open). One listing only the alarm the banner now names is stale too: the
  // service's list, asked when a card changed, can name the new fall before the live feed
  // brings its alarm, and the notice then said "Still open: FALL on Dad's treadmill", a
  // second Silence, above the banner that said it again, the Acknowledge pushed down.
  function staleNotice() {
    if (!notice || notice.hidden || !notice.classList.contains("ack-done")) return false;
    return !notice.querySelector(".still-open") || (!!listed && listed.every(namedHere));
  }
  // The alert of the notice's list is the one the banner names (an alert outside incidents
  // is named by its event), red and not silenced from the notice; or amber, of the incident
  // the banner names: the trip before its fall. A monitor sends the trip 2.4 s before the
  // fall: the notice listed it ("Still open: Stumble on Dad's treadmill", amber), the fall's
  // banner went above it, the list asked again then said "FALL on Dad's treadmill" in the
  // notice too, a second Silence, and the banner's Acknowledge pushed down.
  function namedHere(a) {
    if (!named || (a.incident || a.event) !== named) return false;
    return a.urgent === false ? !!a.incident : !quietened.has(a.event);
  }
  function replaceNotice() {
    var after = notice.nextElementSibling, top = after ? after.getBoundingClientRect().top : 0;
    notice.hidden = true;
    notice.style.minHeight = "";
    banner.hidden = false;
    var moved = after ? top - after.getBoundingClientRect().top : 0;
    if (moved > 0) banner.style.marginBottom = moved + "px";
  }
  // The banner's own Acknowledge, for the alarm it names: the red banner stays at the top
  // (sticky) while the card's button sat below the fold on a phone (y=915 of 740 after an
  // earlier alert's acknowledgement). It submits the form of the card (or the event page)
  // that shows that incident: the same route, CSRF and words of what the page showed, one
  // tap closing it, the card then saying so. Its room is always in the banner (visibility,
  // not display): shown or not, the banner's height, and the cards under it, never move.
  var bannerAck = document.getElementById("alarm-ack");
  // A card's form is offered only once it says the page showed the alarm the banner names
  // (``namedEvent``) or an alert heard after it. The banner names a fall as the feed brings
  // it; the card comes in a later batch (cards wait until no row is queued), and under load
  // it still showed the trip, its form saying the trip was the newest alert seen: the
  // banner's "FALL on Dad's treadmill" Acknowledge was refused with "A new alert arrived
  // before your click: FALL", the fall the caregiver had just read. The button waits for
  // the card (showBannerAck at each batch of cards). An event page's form is not kept
  // current by the feed: offered as it is (a refusal reloads that page with the new alert).
  var namedEvent = "", arrivals = new Map(), arrivalsCount = 0, ARRIVALS_KEPT = 1000;
  function arrived(id) {  // the order the feed brought events in (those rendered: none)
    if (arrivals.has(id)) return;
    arrivals.set(id, ++arrivalsCount);
    if (arrivals.size > ARRIVALS_KEPT) arrivals.delete(arrivals.keys().next().value);
  }
  function showsNamed(form) {
    var seen = form.querySelector('input[name="seen"]'), at = arrivals.get(namedEvent);
    if (!seen || !namedEvent || seen.value === namedEvent || at === undefined) return true;
    var shown = arrivals.get(seen.value);  // rendered with the page, or heard before: older
    return shown !== undefined && shown > at;
  }
  function namedForm() {
    if (!named) return null;
    var here = document.querySelector(".event-detail[data-incident]");
    if (here && here.dataset.incident === named) return document.getElementById("ack-form");
    var forms = document.querySelectorAll(".ack-form");
    for (var i = 0; i < forms.length; i++) {
      var incident = forms[i].querySelector('input[name="incident"]');
      if (incident && incident.value === named) return showsNamed(forms[i]) ? forms[i] : null;
    }
    return null;
  }
  // Where the page has no form for it and none will come (no card of its treadmill: the
  // progress and plan pages, another alert's page, another treadmill's page), the button's
  // room says so, leading into Open; the fleet, or the alarm's treadmill's page, waits for
  // its card (its room kept empty a moment, not worded then undone).
  var ackElsewhere = document.getElementById("alarm-ack-elsewhere");
  function namedDevice() {  // the treadmill of the alarm the banner names
    var a = alarmedFor && alarmedFor.get(namedEvent);  // (a page's first call: not yet made)
    if (a) return a.device;
    try {
      var rendered = JSON.parse(banner.dataset.alarms || "[]").filter(function (r) { return r.incident === named; });
      return rendered.length ? rendered[0].device : "";
    } catch (e) { return ""; }
  }
  function cardWillCome() {
    if (document.querySelector('[data-page="fleet"]')) return true;
    var device = namedDevice();
    return !!device && !!document.getElementById("card-" + device);
  }
  function showBannerAck() {
    var form = namedForm();
    if (bannerAck) bannerAck.classList.toggle("alarm-ack-off", !form);
    if (ackElsewhere) ackElsewhere.hidden = !!form || cardWillCome();
  }
  if (bannerAck) bannerAck.addEventListener("click", function () {
    var form = namedForm(), sent = form && form.querySelector("button");
    if (!form || !sent || sent.disabled) return;  // sending already: one tap, one ack
    if (form.requestSubmit) form.requestSubmit();
    else form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
  });
  // The banner's words, link and the tab's title, without sounding anything (``event``: the
  // alarm's, whose card the banner's Acknowledge waits for).
  function nameAlarm(text, link, more, incident, event) {
    named = incident || ""; namedEvent = event || "";
    showBannerAck();
    setHyphened(document.getElementById("alarm-text"), text);
    setMore(more);
    var open = document.getElementById("alarm-link"), here = document.querySelector(".event-detail[data-incident]");
    open.setAttribute("href", link);
    open.hidden = !!(here && incident && here.dataset.incident === incident);
    document.title = "\u26A0 " + text + (more.count ? " (+" + more.count + " more)" : "");
  }
  // "+N more": every other open alarm the banner sounds for, one an incident (a fall and its
  // no recovery are one), and where each is, a link: another treadmill's (its newest alarm;
  // "2 on Dad's treadmill", its page, for two), then the named treadmill's own earlier ones
  // ("1 earlier on treadmill-2"). A treadmill with several open incidents was named by its
  // oldest, and its others were neither counted nor reachable from the banner.
  // ``alarms``: {event, device, name, link, incident}, oldest first; ``named``: the banner's.
  // caregiver/routes/site.py words the banner rendered with the page the same way.
  function alarmKey(a) { return a.alone ? "device " + a.device : a.incident || a.event; }
  function moreOf(alarms, named) {
    var byIncident = new Map(), mine = alarmKey(named);
    alarms.forEach(function (a) {  // an incident's newest event, where its first came
      var key = alarmKey(a);
      if (key !== mine) byIncident.set(key, a);
    });
    var groups = new Map();
    byIncident.forEach(function (a) {
      if (!groups.has(a.device)) groups.set(a.device, []);
      groups.get(a.device).push(a);
    });
    var entries = [], own = null;
    groups.forEach(function (list, device) {
      var one = list.length === 1, a = list[list.length - 1];
      var entry = { link: one ? a.link : "/devices/" + encodeURIComponent(device) };
      if (device === named.device) { entry.text = list.length + " earlier on " + a.name; own = entry; return; }
      entry.text = one ? a.name : list.length + " on " + a.name;
      entries.push(entry);
    });
    if (own) entries.push(own);
    return { count: byIncident.size, entries: entries };
  }
  var NO_MORE = { count: 0, entries: [] };
  function setMore(more) {
    var box = document.getElementById("alarm-more");
    box.textContent = "";
    if (!more.count) return;
    box.appendChild(document.createTextNode("+" + more.count + " more: "));
    more.entries.forEach(function (m, i) {
      if (i) box.appendChild(document.createTextNode(", "));
      box.appendChild(node("a", { href: m.link, "class": "alarm-more-link" }, hyphened(m.text)));
    });
  }
  // Whether the alarm can be heard, said plainly on the banner: the sound is off in this
  // browser, or on and waiting for a tap (a page opened without one — a wall tablet's browser
  // restarted, a dashboard opened after the fall — may not play sound until then: the first
  // tap or key press anywhere starts it).
  function showAlarmSound() {
    var note = document.getElementById("alarm-sound");
    if (!note) return;
    var text = "";
    if (!banner.hidden) {
      if (!remembered()) text = "Alarm sound is off: press Enable alarm sound to hear alarms";
      else if (!audio || audio.state !== "running") text = "No sound yet: this browser plays it only after a tap — tap anywhere on the page";
    }
    note.textContent = text;
  }
  // The system's notification: one for every device that alarms, never coalesced.
  function notify(text, link) {
    if ("Notification" in window && Notification.permission === "granted") {
      var n = new Notification("RetroGuard", { body: text, tag: link, requireInteraction: true });
      n.onclick = function () { window.focus(); location.href = link; };
    }
  }
  // ``remember``: the caregiver pressed Silence — the tab's next pages do not raise these
  // alarms again. An acknowledgement hides the banner too, but remembers nothing: what it
  // closed is no longer open, and another device's fall shown with it ("+1 more") still is.
  function silence(remember) {
    if (remember === true) {
      // and the banner's as rendered, before the page asked for them (early): heard, so the
      // answer does not raise them again, and remembered by the tab as those it raised
      var quiet = showing.concat(early);
      quiet.forEach(function (id) { heard.add(id); });
      silenced(quiet);
    }
    early = [];
    showing = [];
    banner.hidden = true;
    banner.style.marginBottom = "";  // the room it kept for a notice it replaced
    setMore(NO_MORE);
    if (alarmTimer) clearInterval(alarmTimer);
    alarmTimer = null;
    document.title = stillWarning() || "RetroGuard caregiver";
    showAlarmSound();
  }
  // The title while the notice lists amber alerts (offline while armed, a stumble not reset,
  // a fault): Silence stops the red alarm's sound, not the warning for what still pages —
  // the title read "RetroGuard caregiver", all answered at a glance, while one paged.
  function stillWarning() {
    var amber = notice && !notice.hidden ? notice.querySelectorAll("a.still-open-warn") : [];
    if (!amber.length) return "";
    return "\u26A0 Still open: " + Array.prototype.map.call(amber, linkWords).join(", ");
  }
  // A listed alert's words, without the "," its link holds (.still-open-sep): each link but
  // the last ended in it, and the title, joined with ", ", read "A,, B".
  function linkWords(a) {
    return Array.prototype.map.call(a.childNodes, function (c) {
      return c.nodeType === 1 && c.classList.contains("still-open-sep") ? "" : c.textContent;
    }).join("");
  }
  document.getElementById("alarm-silence").addEventListener("click", function () { silence(true); });

  // "Enable alarm sound" is remembered in this browser (localStorage) across pages and visits.
  // Browsers start sound only after a click on the page, so on a new page the sound is ready
  // at the first click or key press anywhere, and the button says so until then.
  var SOUND_KEY = "retroguard.alarmSound";
  var enable = document.getElementById("enable-alerts");
  if (enable) enable.hidden = false;  // the page renders it hidden: no script, no sound
  function remembered() {
    try { return localStorage.getItem(SOUND_KEY) === "on"; } catch (e) { return false; }
  }
  function remember(on) {
    try { if (on) localStorage.setItem(SOUND_KEY, "on"); else localStorage.removeItem(SOUND_KEY); } catch (e) { /* private mode */ }
  }
  function showSound() {
    showAlarmSound();
    if (!enable) return;
    var on = remembered();
    var running = on && audio && audio.state === "running";
    enable.setAttribute("aria-pressed", on ? "true" : "false");
    enable.dataset.sound = on ? (running ? "on" : "waiting") : "off";
    enable.textContent = !on ? "Enable alarm sound"
      : running ? "Alarm sound on" : "Alarm sound on — tap anywhere to allow";
  }
  // Whether the sound ran when last started: every try that waited for the browser's leave
  // is answered as it starts, and the start beeps once, not once a try.
  var sounding = false;
  function startAudio() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var resumed = audio.resume();
      if (resumed && resumed.then) resumed.then(function () {
        // an alarm already showing is heard at once, not at the next beep
        if (!sounding && audio && audio.state === "running") {
          sounding = true;
          awake();
          if (!banner.hidden) beep();
        }
        showSound();
      }, showSound);
    } catch (e) { audio = null; }
    showSound();
  }
  if (enable) enable.addEventListener("click", function (ev) {
    ev.stopPropagation();
    if (remembered() && audio && audio.state === "running") {
      remember(false);
      if (audio) audio.suspend();
      sounding = false;
      showSound();
      return;
    }
    remember(true);
    startAudio();
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
    beep();
  });
  // A mouse's press or a key lets the page start sound at once, a touch only as the finger
  // lifts (pointerup, touchend, click): the page tries at each until the sound runs.
  var WAKE = ["pointerdown", "pointerup", "touchend", "click", "keydown"];
  function wake() {
    if (remembered()) startAudio();
  }
  function awake() {
    WAKE.forEach(function (type) { document.removeEventListener(type, wake, true); });
  }
  if (remembered()) {
    startAudio();
    WAKE.forEach(function (type) { document.addEventListener(type, wake, true); });
  }
  showSound();

  function onDevice(msg) {
    var old = document.getElementById("card-" + msg.device_id);
    var el = renderCard(msg.device_id, msg.card);
    var fleet = document.getElementById("fleet");
    if (old) {
      old.replaceWith(el);
    } else if (fleet && fleet.dataset.page === "fleet") {
      var empty = document.getElementById("no-devices");
      if (empty) empty.remove();
      fleet.appendChild(el);
    }
    if (fleet && fleet.dataset.page === "fleet") urgentFirst(fleet);
    reachable(msg.device_id, !!msg.card.offline);
    confirmedHere(msg);
    answeredWordsNow(msg);
  }
  // The notice of an alarm answered elsewhere says the card's words as they stood: "Fall —
  // acknowledged by sue on the dashboard — not yet confirmed by the treadmill". Once the
  // treadmill confirmed, the card dropped "not yet confirmed" and the notice above it went
  // on saying it. It follows its card's words while that card shows the same alert closed;
  // the card under the thumb stays where it was (keepPlace).
  var elsewhere = null;  // {device, link, name}: whose card's words the notice says
  function answeredWordsNow(msg) {
    var h = msg.card && msg.card.headline, lead = notice && notice.firstChild;
    if (!elsewhere || !h || h.open || elsewhere.device !== msg.device_id || h.link !== elsewhere.link) return;
    if (notice.hidden || !notice.classList.contains("ack-done") || !lead || lead.nodeType !== 3) return;
    var card = document.getElementById("card-" + msg.device_id);
    var top = card ? card.getBoundingClientRect().top : 0;
    lead.nodeValue = elsewhere.name + ": " + h.text + ". The alarm has stopped.";
    keepPlace(card, top);
  }
  // An event page of a caregiver's close the treadmill has not confirmed says so, as its card
  // does (data-untold-*: the page's incident, by its card's headline link, and the card's
  // words for it); the event page is not a live part: once the card of its treadmill shows
  // that incident without those words (the treadmill confirmed), the page takes itself again.
  function confirmedHere(msg) {
    var here = document.querySelector(".event-detail[data-untold-device]");
    var h = msg.card && msg.card.headline;
    if (!here || !h || here.dataset.untoldDevice !== msg.device_id) return;
    if (h.link === here.dataset.untoldLink && h.text.indexOf(here.dataset.untoldWords) < 0) reload();
  }
  // The device page's commands (test alarm, self-test) cannot reach an offline treadmill:
  // disabled, the reason said beside them, and back when it is online (the service refuses
  // them too; they used to be offered, pressed, and answered "nothing was sent").
  function offlineNow(name) {  // the treadmill went offline while the request was out
    var why = document.getElementById(name + "-offline");
    return !!why && !why.hidden;
  }
  var COMMANDS = ["test-alarm", "self-test"];
  function reachable(id, offline) {
    COMMANDS.forEach(function (name) {
      var form = document.getElementById(name + "-form");
      if (form && form.getAttribute("action") === "/devices/" + encodeURIComponent(id) + "/" + name) offered(name, offline);
    });
  }
  function offered(name, offline) {
    var form = document.getElementById(name + "-form"), why = document.getElementById(name + "-offline");
    if (!form || !why) return;
    form.querySelector("button").disabled = offline;
    why.hidden = !offline;
  }
  // A page brought up to date (resync) takes the commands' reachability from its fresh copy,
  // as it takes the card beside them: the forms are not live parts (their handlers stay), so
  // a treadmill back online between the render and the feed's opening left them disabled,
  // "the treadmill is offline" beside a card saying it was online, until its next message.
  function reachableAsRendered(fresh) {
    COMMANDS.forEach(function (name) {
      var told = fresh.getElementById(name + "-offline");
      if (told) offered(name, !told.hidden);
    });
  }
  // The fleet's cards in the order the server renders them (caregiver.story.URGENCY): red,
  // then amber, then the rest, in name order within each. In the document, not only on
  // screen (the stylesheet's order): a screen reader and the Tab key follow the document.
  // Except a card this page just acknowledged: it keeps its place (ranked as it was, red),
  // showing "acknowledged by ..." where the caregiver tapped. Sent to the bottom, it took
  // that confirmation out of sight and slid the next red card's Acknowledge button under
  // the thumb: a second tap closed another treadmill's fall or call for help unread.
  // Until the page is loaded again (the server's order then). On screen too: the stylesheet
  // orders by level (.kept-in-place ranks as red there).
  var URGENCY = { danger: 0, warn: 1 };
  var keptInPlace = new Set();
  function urgentFirst(fleet) {
    var cards = Array.prototype.slice.call(fleet.querySelectorAll(":scope > .card"));
    function rank(card) {
      if (keptInPlace.has(card.dataset.device)) return 0;
      var r = URGENCY[card.dataset.level];
      return r === undefined ? 2 : r;
    }
    cards.forEach(function (card) { card.classList.toggle("kept-in-place", keptInPlace.has(card.dataset.device)); });
    var sorted = cards.slice().sort(function (a, b) {
      return rank(a) - rank(b) || (a.dataset.device < b.dataset.device ? -1 : a.dataset.device > b.dataset.device ? 1 : 0);
    });
    for (var i = 0; i < cards.length; i++) {
      if (sorted[i] !== cards[i]) {  // only when the order changes: a moved card loses focus
        sorted.forEach(function (card) { fleet.appendChild(card); });
        return;
      }
    }
  }
  var RECENT_ALERTS = 50;
  function onEvent(msg) {
    var e = msg.event;
    var list = document.getElementById("timeline");
    var alertType = ["stumble", "fall", "no_recovery", "fault"].indexOf(e.type) >= 0;
    if (list && e.listed && (list.dataset.device === e.device_id || (list.dataset.device === "*" && alertType))) {
      // One press of reset after a stumble sends "I'm OK" and the re-arming (story.ONE_PRESS):
      // the second joins the first's row, in the words the page itself renders for the two.
      var partner = e.joined ? Array.prototype.find.call(
        list.querySelectorAll('[data-press="' + CSS.escape(e.incident) + '"]'),
        function (row) { return row.dataset.type !== e.type; }) : null;
      if (partner) {
        partner.querySelector(".etype").textContent = e.joined;
        partner.querySelector(".ereason").textContent = "";
      } else if (!list.querySelector('[data-event="' + e.id + '"]')) {
        var empty = list.querySelector(".empty");
        if (empty) empty.remove();
        list.insertBefore(renderEvent(e, msg.device_name), list.firstChild);
        // the fleet's list of recent alerts stays short (a device's timeline keeps all)
        while (list.dataset.device === "*" && list.children.length > RECENT_ALERTS) list.lastElementChild.remove();
      }
    }
  }
  // The first critical event alarms at once; more of them before the page's next batch of
  // changes (a burst: falls on many treadmills) wait for that batch, one per device (its
  // newest): each device gets its notification then, and the banner and the tab's title
  // change once, to the newest. Each change of the title costs the browser's own process a
  // redraw: one a fall in a burst of 170 cost it more CPU than the service spent storing them.
  var alarmed = [], pendingAlarms = new Map();
  var alarmedFor = new Map();  // each alarm's event: its device, name and incident
  // ``alone``: the event names no incident (a device from before incidents): its
  // treadmill's critical events are one alarm for "+N more", as they were
  function sounds(device, name, text, link, event, incident, alone) {  // raised: it sounds until answered
    showing.push(event);
    alarmedFor.set(event, { event: event, device: device, name: name, incident: incident, text: text, link: link, alone: !!alone });
  }
  function raiseAlarm(device, name, text, link, event, incident, alone) {
    sounds(device, name, text, link, event, incident, alone);
    if (!alarmed.length) {
      alarmed.push(name);
      showAlarm(text, link, soundingMore(event), incident, event);
      notify(text, link);
      return;
    }
    pendingAlarms.delete(device);  // its newest, in the order they came
    pendingAlarms.set(device, { name: name, text: text, link: link, incident: incident, event: event });
  }
  // Each alert's alarm words, as the page was rendered with them (core.protocol.words): what
  // a page fed by an instance older than the worded alarms says (it said the type in
  // capitals, "NO RECOVERY on ..."); a type this service does not know yet, in capitals.
  var alarmWords = {};
  try { alarmWords = JSON.parse((banner && banner.dataset.alarmWords) || "{}"); } catch (e) { /* none */ }
  function alarmTitle(type) {
    return Object.prototype.hasOwnProperty.call(alarmWords, type)
      ? alarmWords[type] : type.replace(/_/g, " ").toUpperCase();
  }
  function alarmFor(msg) {
    var e = msg.event;
    // the service's words; an instance older than them (a rolling upgrade) sends none: a
    // critical event then alarms in the words the page was rendered with (alarmWords) —
    // beats a silent fall
    var text = msg.alarm || (e.severity === "critical"
      ? alarmTitle(e.type) + " on " + msg.device_name : "");
    if (!text || e.acked_by || heard.has(e.id)) return;  // once; not its ack
    heard.add(e.id);
    // its incident (a device from before incidents: the event is its own)
    raiseAlarm(e.device_id, msg.device_name, text, "/events/" + e.id, e.id, e.incident || e.id, !e.incident);
  }
  function raisePendingAlarms() {
    var waiting = Array.from(pendingAlarms.values()), newest = waiting[waiting.length - 1];
    alarmed = []; pendingAlarms = new Map();
    if (!newest) return;
    waiting.forEach(function (a) { notify(a.text, a.link); });
    showAlarm(newest.text, newest.link, soundingMore(newest.event), newest.incident, newest.event);
  }
  // The alarms still sounding (raised, not silenced nor answered: ``showing``) other than
  // ``event``'s: "+N more" counted only the alarms of the same batch, and two falls a few
  // seconds apart both sounded while the banner named only the newest.
  function soundingMore(event) {
    var named = alarmedFor.get(event);
    if (!named) return NO_MORE;
    var alarms = [];
    showing.forEach(function (e) { var a = alarmedFor.get(e); if (a) alarms.push(a); });
    return moreOf(alarms, named);
  }

  function onIncident(msg) {
    var list = document.getElementById("incidents");
    if (!list) return;
    var el = renderIncident(msg.incident, msg.row);
    var old = document.getElementById("incident-" + msg.incident);
    if (old) { old.replaceWith(el); return; }
    // in its place by when it opened, newest first, as the server lists them; one older than
    // every row of a full list is not added (the page left it out): a card's change or an
    // older alert's close confirmed put a days-old alert on top, above newer ones
    var at = Number(msg.row.opened_at), rows = list.querySelectorAll("li.incident"), next = null;
    for (var i = 0; i < rows.length && !next; i++) {
      if (Number(rows[i].dataset.openedAt) < at) next = rows[i];
    }
    if (!next && rows.length >= Number(list.dataset.limit || Infinity)) return;
    var empty = list.querySelector(".empty");
    if (empty) empty.remove();
    list.insertBefore(el, next);
  }

  // The service cannot hear the devices (caregiver/broker_link.py): the banner says so on
  // every page, from each stream's hello and each change of the link; the same markup as
  // templates/base.html.
  var brokerBanner = document.getElementById("broker-banner");
  // A banner that says a part of the database is not used (b.degraded) is shown, but the
  // service still receives and pages: the badge stays "live".
  var brokerDown = !!brokerBanner && !brokerBanner.hidden &&
    !brokerBanner.dataset.degraded;  // as the server rendered it
  function onBroker(b) {
    if (!brokerBanner || !b) return;
    brokerDown = !!b.down && !b.degraded;
    // no card is current while the service hears no treadmill: each says it is not live, as
    // while the page's own feed reconnects (app.css: body[data-broker-down="1"])
    if (brokerDown) document.body.dataset.brokerDown = "1";
    else delete document.body.dataset.brokerDown;
    if (b.degraded) brokerBanner.dataset.degraded = "1";
    else delete brokerBanner.dataset.degraded;
    showLive();
    if (!b.down) { brokerBanner.hidden = true; brokerBanner.textContent = ""; return; }
    var detail = b.since ? [b.detail + " since ", timeEl(b.since), "."] : [b.detail + "."];
    brokerBanner.replaceChildren.apply(brokerBanner, spaced([
      node("strong", { "class": "broker-lead" }, [b.lead + ":"]),
      node("span", { "class": "broker-detail" }, detail),
      node("span", { "class": "broker-consequence" }, [b.consequence])]));
    finish(brokerBanner);
    brokerBanner.hidden = false;
  }

  function onSession(msg) {
    var progress = document.getElementById("progress");
    if (progress && progress.dataset.device === msg.device_id) reload();
  }

  // A walker's progression as the treadmill keeps it changed (a hold typed at the treadmill,
  // a stage it moved on by itself: caregiver/feed.py, "stage"): their progress page reloads,
  // as for a session; the plan page showing them takes its "in force" section afresh
  // (resync: the forms, perhaps half filled in, are left as they are). Before, either page
  // said the old stage until reloaded by hand.
  function onStage(msg) {
    var progress = document.getElementById("progress");
    if (progress) {
      if (progress.dataset.device === msg.device_id && progress.dataset.walker === msg.walker) reload();
      return;
    }
    var inForce = document.getElementById("plan-in-force");
    if (inForce && inForce.dataset.device === msg.device_id && inForce.dataset.walker === msg.walker) resync();
  }

  // A feed that broke (the network, a restart, or the service dropped this page for not
  // reading fast enough) missed what changed meanwhile: once it is back the page fetches
  // itself and takes the live parts from there, and every page (not only the fleet's) asks
  // the service for the critical events it missed and alarms for them (onHello).
  // What alarms is the service's to say (missedAlarms), not a card's colour: a card is red
  // again when a fault reopens an incident whose fall somebody already answered.
  var LIVE_PARTS = ["fleet", "incidents", "timeline", "plan-in-force"], resyncing = false;
  // Only the newest fetch may write the page (an older one answering late would undo it); a
  // fetch that fails is tried again in a moment, not left until the feed breaks again.
  var resyncs = 0;
  // Where the live parts are taken from: the page's own address, unless a part names its page.
  // The plan page sent back by a POST with the form's problems is at the form's address:
  // /progression has no page to GET (it was asked for every 2 s, the feed's changes held back
  // meanwhile), and /plan without ?walker= is another walker's page; its section names the
  // walker's plan page (data-resync-from).
  function pageOf() {
    var named = document.querySelector("[data-resync-from]");
    return named ? new URL(named.dataset.resyncFrom, location.href).href : location.href;
  }
  function resync() {
    if (document.getElementById("progress")) { reload(); return; }
    if (!LIVE_PARTS.some(function (id) { return document.getElementById(id); })) return;
    resyncing = true;
    var mine = ++resyncs, href = pageOf();
    fetch(href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (mine !== resyncs) return;
        if (r.redirected || r.status === 401 || r.status === 404) { reload(href); return; }  // e.g. logged out meanwhile
        if (!r.ok) throw new Error("HTTP " + r.status);  // e.g. its database down: again in a moment
        return r.text().then(function (html) {
          if (mine !== resyncs) return;
          var fresh = new DOMParser().parseFromString(html, "text/html");
          LIVE_PARTS.forEach(function (id) {
            var old = document.getElementById(id), part = fresh.getElementById(id);
            if (old && part) old.replaceWith(finish(document.importNode(part, true)));
          });
          reachableAsRendered(fresh);
        });
      })
      .then(function () {
        if (mine !== resyncs) return;
        resyncing = false; schedule();
      }, function () {
        if (mine === resyncs) setTimeout(resync, 2000);  // the feed is open: try again
      });
  }

  // What this page knows (heard): the critical events it alarmed for — those the live feed
  // brought, and those the service named when the page asked (/api/alarms: each open
  // critical incident's newest critical event nobody answered); one the page does not know,
  // it alarms for, once. No times: the service's clocks, the events' arrival times and the
  // page's need not agree. A page opened afresh (a caregiver opening the dashboard after a
  // fall, a wall tablet's browser restarted) knows none: it asks at once when it was
  // rendered with open critical incidents (data-alarmed) and alarms for them — except those
  // a caregiver silenced in this tab (sessionStorage: the tab only; a new
  // tab or browser alarms again). A reload this script makes (the progress page's catching
  // up, a new session, an acknowledgement's notice) hands what it knew to the next page,
  // which asks: the next page's render shows what this one missed, so it takes this one's
  // knowledge instead — and does not alarm again for what this one alarmed for.
  var body = document.body, heard = new Set(), owed = false, showing = [];
  var SILENCED = "retroguard.silenced", SILENCED_KEPT = 500;
  function silenced(ids) {  // the tab's caregiver silenced these alarms: no new page repeats them
    if (!ids.length) return;
    try {
      var kept = JSON.parse(sessionStorage.getItem(SILENCED) || "[]");
      ids.forEach(function (id) { if (kept.indexOf(id) < 0) kept.push(id); });
      sessionStorage.setItem(SILENCED, JSON.stringify(kept.slice(-SILENCED_KEPT)));
    } catch (e) { /* no session storage: a new page alarms again */ }
  }
  try { JSON.parse(sessionStorage.getItem(SILENCED) || "[]").forEach(function (id) { heard.add(id); }); } catch (e) { /* none */ }
  var rendered = [];
  try { rendered = JSON.parse(body.dataset.alarmed || "[]"); } catch (e) { /* none */ }
  var HANDOVER = "retroguard.catchUp", HANDED_OVER = 1500;  // a render's ids (up to 1,000) and more
  try {
    var handed = JSON.parse(sessionStorage.getItem(HANDOVER) || "null");
    sessionStorage.removeItem(HANDOVER);
    if (handed && handed.page === location.pathname && Array.isArray(handed.heard)) {
      handed.heard.forEach(function (id) { heard.add(id); }); owed = true; rendered = [];
    }
  } catch (e) { /* no session storage: the page alarms for what it was rendered with */ }
  // Only onto a page the service can serve: with its database down it answers an error page,
  // and a reload onto that would leave no script to come back (no feed, no alarms). Any other
  // answer (a page gone, logged out) is reloaded onto, to show it. One such wait at a time.
  // ``to``: this page at another address (its notice after an acknowledgement), else as it is.
  // A progress page is one walker's, and its address without ?walker= (a card's Walking
  // progress link) means whoever walked last: the address takes the walker it shows, so the
  // page's reloads (another walker's session stored, a feed back after a break), a refresh
  // and a bookmark stay that walker's. Before, another walker's session on the treadmill
  // reloaded the page onto theirs while the physio read it, reports links and all.
  (function keepProgressWalker() {
    var progress = document.getElementById("progress");
    var walker = progress && progress.dataset.walker;
    var params = new URLSearchParams(location.search);
    if (!walker || params.has("walker") || !window.history || !history.replaceState) return;
    params.set("walker", walker);
    history.replaceState(history.state, "", location.pathname + "?" + params.toString() + location.hash);
  })();
  var reloading = false;
  function reload(to) {
    if (reloading) return;
    reloading = true;
    tryReload(to || location.href);
  }
  function tryReload(to) {
    // asked as the reload will ask (a HEAD skips what only a page's render reads)
    fetch(to, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (r) {
      if (r.status >= 500) { setTimeout(function () { tryReload(to); }, 2000); return; }
      try {
        sessionStorage.setItem(HANDOVER, JSON.stringify(
          { page: location.pathname, heard: Array.from(heard).slice(-HANDED_OVER) }));
      } catch (e) { /* private mode */ }
      if (to === location.href) location.reload(); else location.assign(to);
    }, function () { setTimeout(function () { tryReload(to); }, 2000); });
  }
  // The alarms of the banner rendered with the page (their events, from data-alarmed), shown
  // until the page has asked for its alarms: a Silence pressed then silences them, as one
  // pressed after (it silenced nothing, and the answer raised the alarm again).
  var early = [];
  // What one catching up found, raised together: each device's notification, then the
  // banner and the title once, on the newest, "+N more" naming every other alarm sounding.
  // Raised one by one, the banner showed the oldest alone until the next batch named the
  // newest (50 ms): a line shorter without its "+N more", it pulled the cards up under a
  // finger and pushed them back (59 px on a phone). With an alarm of the feed's batch under
  // way they join that batch, as the feed's do.
  function raiseCaughtUp(found) {
    if (!found.length) return;
    if (alarmed.length) {
      found.forEach(function (a) { raiseAlarm(a.device_id, a.device_name, a.text, a.link, a.event, a.incident); });
      return;
    }
    var newestOf = new Map();  // one notification a device, its newest, as the feed's batch
    found.forEach(function (a) {
      sounds(a.device_id, a.device_name, a.text, a.link, a.event, a.incident);
      if (alarmed.indexOf(a.device_name) < 0) alarmed.push(a.device_name);
      newestOf.delete(a.device_id);
      newestOf.set(a.device_id, a);
    });
    newestOf.forEach(function (a) { notify(a.text, a.link); });
    var newest = found[found.length - 1];
    showAlarm(newest.text, newest.link, soundingMore(newest.event), newest.incident, newest.event);
  }
  // The page has its catching up's answer (body[data-caught-up]: how many it had): what it
  // raised, and did not, is settled (the tests wait for it, as for data-live).
  function caughtUpDone() {
    body.dataset.caughtUp = String((parseInt(body.dataset.caughtUp || "0", 10) || 0) + 1);
  }
  // The list of an answer from /api/alarms, or null when it is malformed (not an object whose
  // "alarms" is a list of objects each naming its event: a proxy's page, a half-upgraded
  // service): not known, never "none open" (missedAlarms and stillOpen alike).
  function alarmsOf(found) {
    if (!found || typeof found !== "object" || !Array.isArray(found.alarms)) return null;
    var whole = found.alarms.every(function (a) {
      return !!a && typeof a === "object" && typeof a.event === "string";
    });
    return whole ? found.alarms : null;
  }
  function missedAlarms() {
    fetch("/api/alarms", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401 || r.status === 404) return null;  // logged out (resync says so)
        if (!r.ok) throw new Error("HTTP " + r.status);
        // a malformed answer is not known: asked again below, as a failed one. It threw in
        // the handler below, which nothing caught: never asked again, the page's alarms
        // for what its feed missed never raised (the banner rendered with the page stayed,
        // silent)
        return r.json().then(function (found) {
          var alarms = alarmsOf(found);
          if (!alarms) throw new Error("a malformed list of open alerts");
          return { alarms: alarms };
        });
      })
      .then(function (found) {
        if (!found) { if (early.length) silence(); caughtUpDone(); return; }
        // newest first: the oldest alarms first, so the banner ends on the newest
        var raise = [];
        found.alarms.slice().reverse().forEach(function (a) {
          // an alert that pages without a fall (offline while armed): listed as still open
          // after an acknowledgement, never the banner's alarm (the live feed raises none)
          if (a.urgent === false || heard.has(a.event)) return;
          heard.add(a.event);
          // every open incident, a device's several too: the banner names the newest and
          // counts the others ("+N more"); it named a device's oldest and hid the rest
          raise.push(a);  // worded as the live alarm
        });
        raiseCaughtUp(raise);
        // the banner rendered for falls answered since: nothing to keep it for
        if (early.length && !showing.length) silence();
        early = [];
        caughtUpDone();
        schedule();
        showWarnings(found.alarms);  // the amber ones: the notice, as the live feed raises it
      }, function () { setTimeout(missedAlarms, 2000); });  // the feed is open: try again
  }
  // The stream's first message says where the changes stood when it opened: the same as
  // this page's (rendered with them) on a first open means nothing reached neither, and the
  // page is left as it is (before: every page fetched itself once, the fleet rendered twice).
  // After a break, or with changes since the render, the page catches up.
  function onHello(msg) {
    var first = !opened, changed = msg.changes !== body.dataset.changes;
    opened = true;
    silentAfter = msg.keepalive_s ? msg.keepalive_s * SILENT_KEEPALIVES * 1000 : 0;
    heardFrom();
    onBroker(msg.broker);
    var refetch = lost || changed, ask = refetch || owed;
    var progress = !!document.getElementById("progress");
    lost = false; owed = false;
    if (!ask) return;
    if (refetch && progress && !first) { reload(); return; }  // it asks once reloaded
    missedAlarms();
    if (refetch && !progress) resync();
  }

  // The badge by the brand: "live" only while this page hears the service and the service
  // hears the broker; a page open on a service that cannot reach its broker is not live,
  // whatever its own connection (the banner says why).
  function showLive() {
    if (document.body.dataset.live !== "1") status.textContent = "reconnecting\u2026";
    else status.textContent = brokerDown ? "not receiving" : "live";
  }

  var lost = false, opened = false;
  // Its question (a HEAD of the page: logged out, it reloads to say so) is given up as a
  // silent stream is, and asked again: on a half-open connection it went unanswered, and the
  // page said "reconnecting…" (no fall heard) until the phone's TCP gave up, many minutes
  // after the network was back. (A service that says no keepalive_s: waited for, as before.)
  function reopen() {
    var ask = silentAfter && window.AbortController ? new AbortController() : null;
    var done = false, unanswered = ask ? setTimeout(function () {
      done = true; ask.abort(); reopen();
    }, silentAfter) : null;
    function answered() {
      if (done) return false;
      done = true; if (unanswered) clearTimeout(unanswered);
      return true;
    }
    fetch(location.href, { method: "HEAD", credentials: "same-origin", signal: ask ? ask.signal : null })
      .then(function (r) { if (answered()) { if (r.redirected) location.reload(); else connect(); } },
            function () { if (answered()) setTimeout(reopen, 2000); });
  }
  // A stream that says nothing is not trusted as live: the service sends a keepalive event
  // after each quiet ``keepalive_s`` (the hello says how long: caregiver/hub.py), and with
  // no word at all for SILENT_KEEPALIVES of them the connection is taken for dead — a
  // phone's half-open connection (the service's writes lost on the way, nothing closed)
  // read "live" for ever and heard of no fall. The badge says "reconnecting…" and the page
  // opens a new stream, whose hello has it catch up (the alarms it missed, its live parts).
  // A hello without keepalive_s (an older instance, whose keepalives were comments the
  // page never saw): not watched, as before.
  var SILENT_KEEPALIVES = 2.5, silentAfter = 0, silentTimer = null, source = null;
  function heardFrom() {
    if (silentTimer) clearTimeout(silentTimer);
    silentTimer = silentAfter ? setTimeout(silentStream, silentAfter) : null;
  }
  function silentStream() {
    silentTimer = null;
    if (source) source.close();
    source = null;
    lost = true; document.body.dataset.live = "0"; showLive();
    reopen();
  }
  function connect() {
    if (source) source.close();  // one stream a page (a silent one, given up)
    var mine = source = new EventSource("/stream");
    heardFrom();  // a new stream that never answers is given up too (from the last hello's)
    mine.onopen = function () {
      document.body.dataset.live = "1"; showLive();
    };
    mine.onerror = function () {
      lost = true; document.body.dataset.live = "0"; showLive();
      // The browser retries a broken connection itself, but gives up after an HTTP error
      // (a proxy's 502 while the service restarts): try again the same way, unless the
      // login ran out (the page reloads to say so).
      if (mine.readyState === EventSource.CLOSED && source === mine) {
        source = null;
        setTimeout(reopen, 2000);
      }
    };
    mine.addEventListener("keepalive", heardFrom);
    mine.onmessage = function (m) {
      heardFrom();
      var msg = JSON.parse(m.data);
      if (msg.kind === "hello") { onHello(msg); return; }
      if (msg.kind === "broker") { onBroker(msg); return; }  // at once, whatever else waits
      if (msg.kind === "event") { arrived(msg.event.id); alarmFor(msg); }  // at once; the page's changes in a moment
      queue.push(msg);
      schedule();
    };
  }

  // The page changes in batches (at most 20 a second): a burst of events is one layout, and
  // a card or incident line changed ten times in it is replaced once (Map: first-seen order).
  // The first alarm does not wait for this (alarmFor).
  // What comes while the page fetches itself (resync) waits, then goes on top of it.
  var queue = [], flushing = false;
  function schedule() {
    if (!flushing) { flushing = true; setTimeout(flush, 50); }
  }
  function flush() {
    flushing = false;
    raisePendingAlarms();
    if (resyncing) return;
    var batch = queue, cards = {}, incidents = new Map();
    queue = [];
    batch.forEach(function (msg) {
      if (msg.kind === "device") cards[msg.device_id] = msg;
      else if (msg.kind === "event") onEvent(msg);
      else if (msg.kind === "session") onSession(msg);
      else if (msg.kind === "stage") onStage(msg);
      else if (msg.kind === "incident") incidents.set(msg.incident, msg);  // its latest line
    });
    incidents.forEach(onIncident);
    Object.keys(cards).forEach(function (id) { onDevice(cards[id]); });
    if (Object.keys(cards).length) showBannerAck();  // the named alarm's card has its form now
    if (Object.keys(cards).length) refreshStillOpen();  // one acknowledged elsewhere leaves the list
    if (Object.keys(cards).length && !banner.hidden) answeredElsewhere();
    // a card turned amber (a monitor gone offline while armed pages): the amber notice; or
    // the notice shows one and a card changed (acknowledged elsewhere, back online)
    if (Object.keys(cards).some(function (id) { return cards[id].level === "warn"; }) || warning()) askWarnings();
  }

  // Acknowledge without leaving the page (the form also works without JavaScript). The form
  // says what the page shows; an alert that came after it stays open, and the service's
  // answer (409) says so: the notice shows it, an event's page shows itself again with it
  // (its form is current then), a card is kept current by the feed.
  var notice = document.getElementById("ack-notice");
  // The address an acknowledgement sent this page to (?ack=...&at=...) said its notice; the
  // notice is on the page now, so the address loses that part: a reload or a bookmark is
  // the plain page, not the notice again as if new (the service stops saying it after
  // ACK_NOTICE_S anyway, caregiver/routes/site.py).
  (function forgetAckAddress() {
    var params = new URLSearchParams(location.search);
    if (!params.has("ack") || !window.history || !history.replaceState) return;
    ["ack", "at", "device", "earlier", "open"].forEach(function (k) { params.delete(k); });
    var rest = params.toString();
    history.replaceState(history.state, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  })();
  function showNotice(text) {
    if (!notice) return;
    notice.textContent = text || "";
    notice.hidden = !text;
    notice.classList.remove("ack-done", "ack-more", "ack-warn", "live-warn");
    notice.style.minHeight = "";
    listed = null;
    elsewhere = null;
  }
  function cardName(card) {
    var name = card && card.querySelector("h2");
    return name ? name.textContent.trim() : "the treadmill";
  }
  // The card whose top was at ``top`` (viewport px) is put back there, whichever way what is
  // above it moved it: the notice's height is set to what does (CSSOM, not a style
  // attribute: the CSP allows it), never below its own words. A notice taller than the
  // banner it replaced (a line more on a phone) pushed the card down under the thumb,
  // uncorrected: what its words need beyond that is scrolled away, in whole pixels (the
  // fraction over made up by the notice). Room the notice keeps beyond its words later (the
  // treadmill's confirmation shortened them) is traded for that scroll: the page goes back
  // up as the notice shrinks, the card where it was.
  var scrolledFor = 0;  // what keepPlace scrolled the page down by, px
  function keepPlace(card, top) {
    if (!card || !notice) return;
    var now = document.getElementById(card.id);  // the feed may have replaced it meanwhile
    if (!now) return;
    function moved() { return top - now.getBoundingClientRect().top; }  // > 0: up
    var wanted = heightOf(notice) + moved();  // the notice's height that puts the card back
    notice.style.minHeight = "";
    var words = heightOf(notice);
    var back = Math.floor(Math.min(scrolledFor, wanted - words));
    if (back > 0) scrollPage(-back);
    wanted = words + moved();
    if (wanted < words) {
      scrollPage(Math.ceil(words - wanted));
      wanted = words + moved();
    }
    if (wanted > words) notice.style.minHeight = wanted + "px";
  }
  // The page scrolled by ``px`` (down if > 0) at once, and kept tall enough to stay there:
  // the card's words, or a row below it, shortened by the treadmill's confirmation made it
  // shorter, the browser scrolled it back up, and the card went down by as much.
  function scrollPage(px) {
    var root = document.documentElement, from = window.scrollY;
    if (px > 0) root.style.minHeight = (from + px + window.innerHeight) + "px";
    window.scrollTo(0, from + px);
    scrolledFor = Math.max(0, scrolledFor + window.scrollY - from);
    if (!scrolledFor) root.style.minHeight = "";
  }
  // An element's height as laid out, fractions kept (border box: the stylesheet's sizing).
  // offsetHeight rounds to whole pixels: each room kept with it (the notice's, after an
  // acknowledgement; again when the feed's card asked for the list) lost up to half a pixel,
  // and under load, with the banner answered elsewhere and acknowledged here in turn, the
  // card under the thumb crept up by more than one.
  function heightOf(el) { return el.getBoundingClientRect().height; }
  // After a card's acknowledgement, the alerts still open (the service's list, without the
  // incident just closed): acknowledging one card hid the whole alarm banner and its beeping,
  // other treadmills' falls and calls for help with it, and the notice said only "closed" in
  // green: a family caregiver read that as all handled. ``null`` when the list cannot be had
  // (no network, an HTTP error): it says nothing of what is open, and each caller keeps what
  // the page shows. Taken for "none open", a second caregiver's page on a patchy connection
  // stopped a fall's alarm nobody had answered and said "was answered" in green.
  function stillOpen(closed) {
    return fetch("/api/alarms", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (found) {
        // a malformed answer ("alarms" not a list of alerts) is not known either, never
        // "none open": it threw, and askWarnings' question stayed asked for good
        var alarms = alarmsOf(found);
        if (!alarms) return null;
        // (an alert outside incidents has none: "" is no incident, never one closed)
        return alarms.filter(function (a) { return !closed || a.incident !== closed; });
      })
      .catch(function () { return null; });
  }
  // The notice says what is still open, each a link to its alert, in the alarm's red; the
  // tab's title and the beeping go on for them (Silence in the notice stops the sound, as
  // the banner's did). None open: the green confirmation alone. Links and Silence sit in the
  // notice at the top, above the card the finger is on: a second tap lands on neither.
  var quietened = new Set();  // the alerts silenced from the notice
  // The alerts the notice lists as still open (staleNotice); null: not listed by this page
  // (a list the service rendered, after an acknowledgement without JavaScript, is kept).
  var listed = null;
  // The card acknowledged here last: its device, name and the moment (this browser's clock).
  var acked = null;
  var clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  // The green line. A new alert on the treadmill just acknowledged (Dad's falls again) is in
  // the banner and the list, and "the alert on Dad's treadmill is closed" beside it read as a
  // contradiction: the line then says it was the EARLIER alert, acknowledged at what time —
  // with its zone, as every time on the page (time.js's "clock": "07:20 UTC"; it read "07:20"
  // beside the cards' "Dec 7, 07:16:04 UTC"). The bare clock only if time.js is missing.
  function ackLine(newer) {
    // someone closed it first (two caregivers at once): who, so each knows who is answering
    if (!newer) return [(acked.earlier || "Acknowledged") + ": the alert on " + acked.name + " is closed."];
    var at = node("time", { datetime: acked.at.toISOString(), "data-format": "clock" }, [clockFormat.format(acked.at)]);
    if (window.retroguardLocalTime) window.retroguardLocalTime(node("span", {}, [at]));
    return ["Acknowledged at ", at, ": the earlier alert on " + acked.name + " is closed."];
  }
  // ``listOnly``: the banner shows an alarm (a new one), which keeps the title and beeping.
  // The list is built anew at each change (the feed's, the treadmill's confirmation): the
  // keyboard's focus on one of its links (or the notice's Silence) goes to the same alert's
  // link in the new list, else to the notice, not to the page's body with the old one.
  function showStillOpen(open, listOnly) {
    var at = document.activeElement;
    var inside = notice && at && at !== notice && notice.contains(at);
    var href = inside ? at.getAttribute("href") : null;
    listStillOpen(open, listOnly);
    if (!inside || notice.contains(document.activeElement)) return;
    var again = href && Array.prototype.find.call(notice.querySelectorAll("a.still-open-link"),
      function (a) { return a.getAttribute("href") === href; });
    if (again) again.focus({ preventScroll: true }); else focusNotice(null);
  }
  // An alarm's words as the notice lists them (site.py's still_open_element), and as read
  // (``text``, for the tab's title): a held stumble's time to page (``pages_at``) in this
  // browser's zone, as every time on the page. The service's words say it in its own zone:
  // a reader in Paris read "alerted at 16:45:41 UTC" beside cards at "17:45:41 UTC+01".
  function stillOpenWords(a) {
    var at = a.pages_at, cut = at ? a.text.indexOf(at.text) : -1;
    if (cut < 0) return { nodes: hyphened(a.text), text: a.text };
    var when = timeEl(at);
    if (window.retroguardLocalTime) window.retroguardLocalTime(node("span", {}, [when]));
    var before = a.text.slice(0, cut), after = a.text.slice(cut + at.text.length);
    return { nodes: hyphened(before).concat([when], hyphened(after)),
             text: before + when.textContent + after };
  }
  function listStillOpen(open, listOnly) {
    if (!notice) return;
    var old = notice.querySelector(".still-open");
    if (old) old.remove();
    if (acked && notice.classList.contains("ack-done")) {  // worded for what is open now
      var newer = open.some(function (a) { return a.device_id === acked.device; });
      notice.textContent = "";  // (not replaceChildren: Safari before 14 lacks it)
      ackLine(newer).forEach(function (c) { notice.append(c); });
    }
    // Every alert that pages is listed, each at its urgency: a fall, no recovery or call for
    // help in red (and beeping), one without (offline while armed, a stumble not reset, a
    // fault) in amber — "Still open: HELP" left out the treadmill gone offline, paging too.
    listed = open;
    unlisted = null;  // a list: the one owed after an acknowledgement is had
    if (unlistedTimer) { clearTimeout(unlistedTimer); unlistedTimer = null; }
    var urgent = open.filter(function (a) { return a.urgent !== false; });
    notice.classList.toggle("ack-more", urgent.length > 0);
    notice.classList.toggle("ack-warn", open.length > 0 && !urgent.length);
    if (!open.length) { if (!listOnly) silence(); return; }
    var links = [], said = [];
    open.forEach(function (a, i) {
      if (i) links.push(" ");
      var level = a.urgent === false ? " still-open-warn" : "";
      var attrs = { href: a.link, "class": "still-open-link" + level };
      if (a.pages_in != null) attrs["data-pages-in"] = String(a.pages_in);
      // the comma in the link's box (the template's .still-open-sep): after it, alone on a
      // phone's line under a link a finger's size
      var sep = i < open.length - 1 ? node("span", { "class": "still-open-sep" }, [","]) : null;
      var words = stillOpenWords(a);
      said.push(words.text);
      links.push(node("a", attrs, words.nodes.concat([sep])));
    });
    var quiet = node("button", { type: "button", "class": "btn btn-plain still-open-silence" }, ["Silence"]);
    quiet.addEventListener("click", function () {
      urgent.forEach(function (a) { quietened.add(a.event); });
      silence(true); quiet.remove();
    });
    var loud = urgent.some(function (a) { return !quietened.has(a.event); });
    notice.appendChild(node("span", { "class": "still-open" + (urgent.length ? "" : " still-open-warn") }, [
      node("span", { "class": "still-open-lead" }, ["Still open: "])].concat(links, loud ? [" ", quiet] : [])));
    watchHeld();
    if (listOnly) return;  // the banner's alarm leads the title and beeping
    if (urgent.length && !loud) return;  // silenced here: said, not sounded again
    // the tab's title names what is open (the notice is in the banner's place), so a
    // glance at the tab never reads "all answered" while an alert pages
    document.title = "\u26A0 Still open: " + said.join(", ");  // as the notice reads them
    if (!loud) return;  // only amber: said, not sounded
    // the alarm goes on for what is open and urgent: the beeping, not the banner
    showing = urgent.map(function (a) { return a.event; });
    if (alarmTimer) clearInterval(alarmTimer);
    alarmTimer = setInterval(beep, 2000);
  }
  // A new alarm after the acknowledgement shows in the banner as any; the notice's list is
  // asked again so it names it too (its height kept: nothing under the finger moves up).
  function refreshStillOpen() {
    if (!notice || notice.hidden || !notice.classList.contains("ack-done")) return;
    if (unlisted) { askUnlisted(0); return; }  // the acknowledgement's list, still owed
    stillOpen("").then(function (open) {
      if (open === null || notice.hidden) return;  // not known: the list as it was
      notice.style.minHeight = heightOf(notice) + "px";
      showStillOpen(open, !banner.hidden);  // the banner's alarm leads the title and beeping
    });
  }
  // An alert that pages without a fall, a call for help or no recovery (a monitor gone
  // offline while armed, a stumble not reset, a fault): the live feed raised nothing for it,
  // and a caregiver with the dashboard open saw only an amber card, if they looked. The
  // notice says it in amber, as /api/alarms words it ("Still open: Monitor went offline
  // while armed on treadmill-3", a link to it) and so does the tab's title; no beeping and
  // no Silence (those are the urgent alarm's), and it goes when nothing amber pages any more
  // (acknowledged here or elsewhere, the monitor back). Never over an acknowledgement's or
  // another answer's notice: that one lists what is still open itself (refreshStillOpen).
  function warning() { return !!notice && !notice.hidden && notice.classList.contains("live-warn"); }
  function showWarnings(alarms) {
    if (!notice || (!notice.hidden && !warning())) return;
    var amber = alarms.filter(function (a) { return a.urgent === false; });
    if (!amber.length) {
      if (!warning()) return;
      notice.hidden = true;
      notice.classList.remove("live-warn", "ack-warn");
      var said = notice.querySelector(".still-open");
      if (said) said.remove();
      if (banner.hidden) document.title = "RetroGuard caregiver";  // the banner's title stays
      return;
    }
    notice.textContent = "";
    notice.hidden = false;
    notice.classList.add("live-warn");
    showStillOpen(amber, !banner.hidden);  // the banner's alarm leads the title
  }
  // The alarm answered by someone else (another caregiver's phone, a notification's link,
  // Home Assistant, the walker's I'm OK): a second caregiver's page went on showing the red
  // banner "FALL on Dad's treadmill" and beeping, Silence and Open, above a card that said
  // "acknowledged by ann" — read as still unanswered, or silenced as if it were his to
  // answer. Once nothing the banner alarms for is open (the service's list), the banner
  // gives way to a green notice saying who answered (the card's words), in its room: the
  // card under the thumb stays where it was (keepPlace). What else pages is listed under it.
  // The card's own change comes in a later batch than the rows that closed its alert (the
  // feed sends cards once no row is queued): until it does, the card still says the alert is
  // open, and the notice could only say "was answered", not who. Each batch with cards asks
  // again; after CARD_WAIT_MS without one the alarm stops all the same.
  var CARD_WAIT_MS = 3000, cardWait = null;
  function answeredElsewhere(force) {
    var was = showing.slice();
    if (!was.length || !notice) return;
    stillOpen("").then(function (open) {
      if (open === null) return;  // not known: the alarm goes on; the next card asks again
      // changed meanwhile: the list may be older than an alarm raised since. The counts
      // alone compared equal when this page's own acknowledgement silenced the one asked
      // about and a new fall then sounded: the stale answer silenced the new fall and said
      // "The alarm has stopped."
      var same = showing.length === was.length && was.every(function (e, i) { return showing[i] === e; });
      if (banner.hidden || !same) return;
      var events = new Set(), incidents = new Set();
      open.forEach(function (a) {
        if (a.urgent === false) return;
        events.add(a.event);
        if (a.incident) incidents.add(a.incident);
      });
      var left = was.some(function (e) {
        var a = alarmedFor.get(e);
        return events.has(e) || !a || !a.incident || incidents.has(a.incident);
      });
      if (left) { renameOpen(was, events, incidents); return; }
      var last = alarmedFor.get(was[was.length - 1]);
      var card = document.getElementById("card-" + last.device);
      var top = card ? card.getBoundingClientRect().top : 0;
      var said = card ? card.querySelector(".headline a") : null;
      if (card && card.querySelector(".headline-open") && !force) {
        if (!cardWait) {
          cardWait = setTimeout(function () { cardWait = null; answeredElsewhere(true); }, CARD_WAIT_MS);
        }
        return;
      }
      if (cardWait) { clearTimeout(cardWait); cardWait = null; }
      var height = heightOf(banner);
      silence();
      showNotice(said && !card.querySelector(".headline-open")
        ? last.name + ": " + said.textContent + ". The alarm has stopped."
        : "The alert on " + last.name + " was answered. The alarm has stopped.");
      if (said && !card.querySelector(".headline-open")) {
        elsewhere = { device: last.device, link: said.getAttribute("href"), name: last.name };
      }
      notice.classList.add("ack-done");
      showStillOpen(open);  // what else pages, at its urgency (the title names amber ones)
      if (card) keepPlace(card, top);
      else notice.style.minHeight = Math.max(heightOf(notice), height) + "px";
    });
  }
  // Some of the banner's alarms answered elsewhere, another still open: it goes on sounding,
  // but named the answered one first ("FALL on Mum's treadmill, +1 more") while Dad's call
  // for help was what paged. The newest still open is named (the banner's own order), the
  // others still open after "+N more"; the beeping goes on as it was.
  function renameOpen(was, events, incidents) {
    var open = was.filter(function (e) {
      var a = alarmedFor.get(e);
      return events.has(e) || !!(a && a.incident && incidents.has(a.incident));
    });
    if (!open.length || (named && (incidents.has(named) || events.has(named)))) return;
    var first = alarmedFor.get(open[open.length - 1]), alarms = [];
    if (!first || !first.text) return;
    open.forEach(function (e) { var a = alarmedFor.get(e); if (a) alarms.push(a); });
    nameAlarm(first.text, first.link, moreOf(alarms, first), first.incident, first.event);
  }
  // A stumble held for the walker's reset is listed with the time it pages ("caregivers are
  // alerted at 14:05:30 CET if not"): once that time has passed the list is asked again, and
  // says what happened (paging, or not reset by then), not a promise of a time gone by. The
  // live feed says it when the service starts paging; this is for when nothing else changed
  // (the service's escalation late, or not acting). ``data-pages-in``: seconds, by the
  // service's clock, from when the list was worded (a phone's clock may be off).
  var heldTimer = null;
  function watchHeld() {
    if (heldTimer) { clearTimeout(heldTimer); heldTimer = null; }
    if (!notice || notice.hidden) return;
    var soonest = Infinity;
    notice.querySelectorAll(".still-open a[data-pages-in]").forEach(function (a) {
      soonest = Math.min(soonest, parseFloat(a.dataset.pagesIn));
    });
    if (!isFinite(soonest)) return;
    // A second past it (the service's tick has run); at most a day: setTimeout fires at once
    // past 2**31 - 1 ms, and asking again after a day is harmless.
    var wait = Math.min(Math.max(0, soonest) * 1000 + 1000, 86400000);
    heldTimer = setTimeout(function () {
      heldTimer = null;
      if (warning()) askWarnings(); else refreshStillOpen();
    }, wait);
  }
  // This page's own acknowledgement, and the list of what else is open could not be had (no
  // network, an HTTP error). Taken for "none open", it stopped the banner and its beeping and
  // said in green that the alert was closed, nothing more, while another treadmill's call for
  // help nobody had answered was open. The alert acknowledged is closed (the service said
  // so): its alarms stop; the banner goes on for the others this page sounds for, named by
  // the newest of them, and the notice says, in amber, that the rest could not be checked.
  // The list is asked again (every UNLISTED_MS, and at each batch of cards) until it comes:
  // then the notice takes the banner's place and lists what is still open, as after any
  // acknowledgement. ``unlisted``: {incident, kept (the alarms left sounding), card}, while asked.
  var UNLISTED_MS = 2000, unlisted = null, unlistedTimer = null;
  function keepOthers(incident, card, ask) {
    var device = card ? card.dataset.device : "";
    var others = showing.filter(function (e) {
      var a = alarmedFor.get(e);
      if (!a) return true;  // not known as the acknowledged one: it sounds on
      return incident ? a.incident !== incident : !(a.alone && a.device === device);
    });
    if (!others.length) silence();
    else if (others.length < showing.length) {
      showing = others;
      var first = alarmedFor.get(others[others.length - 1]), alarms = [];
      others.forEach(function (e) { var a = alarmedFor.get(e); if (a) alarms.push(a); });
      if (first) nameAlarm(first.text, first.link, moreOf(alarms, first), first.incident, first.event);
    }
    if (!ask || !notice) return;
    notice.classList.add("ack-warn");
    notice.append(node("span", { "class": "ack-unlisted" }, [
      "Could not check whether other alerts are open (no answer from the service): " +
      "asking again."]));
    unlisted = { incident: incident, kept: showing.slice(), card: card };
    askUnlisted(UNLISTED_MS);
  }
  function askUnlisted(wait) {
    if (unlistedTimer) clearTimeout(unlistedTimer);
    unlistedTimer = setTimeout(function () {
      unlistedTimer = null;
      var was = unlisted;
      if (!was) return;
      stillOpen(was.incident).then(function (open) {
        if (unlisted !== was) return;  // listed meanwhile (listStillOpen)
        if (!notice || notice.hidden || !notice.classList.contains("ack-done")) { unlisted = null; return; }
        if (open === null) { askUnlisted(UNLISTED_MS); return; }
        unlisted = null;
        // the banner still sounding only for what it kept: the notice takes its place (as
        // after any acknowledgement), the card under the thumb kept where it was
        var same = showing.length === was.kept.length &&
          was.kept.every(function (e, i) { return showing[i] === e; });
        if (banner.hidden || !same) {
          // silenced meanwhile (the banner's Silence): listed, not sounded again
          if (banner.hidden && !showing.length) was.kept.forEach(function (e) { quietened.add(e); });
          showStillOpen(open, !banner.hidden);
          return;
        }
        var card = was.card && document.getElementById(was.card.id);
        var top = card ? card.getBoundingClientRect().top : 0;
        silence();
        showStillOpen(open);
        keepPlace(card, top);
      });
    }, wait);
  }
  // One question at a time; changes meanwhile ask once more when it is answered.
  var warningsAsked = false, warningsAgain = false;
  function askWarnings() {
    if (warningsAsked) { warningsAgain = true; return; }
    warningsAsked = true;
    stillOpen("").then(function (open) {
      warningsAsked = false;
      if (open !== null) showWarnings(open);  // not known: the notice as it was
      if (warningsAgain) { warningsAgain = false; askWarnings(); }
    });
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.matches || !form.matches(".ack-form, #ack-form")) return;
    ev.preventDefault();
    var button = form.querySelector("button");
    var said = new URLSearchParams();
    form.querySelectorAll('input[type="hidden"]').forEach(function (i) {
      if (i.name !== "csrf") said.append(i.name, i.value);
    });
    button.disabled = true; button.textContent = "Sending\u2026"; button.title = "";
    var card = form.closest(".card");
    if (card) keptInPlace.add(card.dataset.device);  // before the feed turns it (urgentFirst)
    fetch(form.action, { method: "POST", body: said, credentials: "same-origin",
                         headers: { "X-CSRF-Token": csrf, "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 409) return r.json().then(function (answer) {
          showNotice(answer.message);
          if (form.id === "ack-form") { reload(answer.location); return; }
          button.disabled = false; button.textContent = "Acknowledge";
        });
        if (!r.ok) { var failed = new Error("HTTP " + r.status); failed.status = r.status; throw failed; }
        // taken (2xx) but its answer unreadable (a proxy's page, a cut-off body): sent, not
        // "Could not reach the service", which had the caregiver think the alert still open
        return r.json().catch(function (bad) {
          var unread = new Error("HTTP " + r.status + ", its answer unreadable (" + bad + ")");
          unread.sent = true; throw unread;
        }).then(function (answer) {
          // closed; "message" when the treadmill is told only once the connection is back
          if (form.id === "ack-form") {
            showNotice(answer.message || "");
            silence();
            reload(answer.location || location.pathname);
            return;
          }
          // A card's: said at the top, where the alarm was, and nothing moves under the
          // thumb. Hiding the alarm banner pulled the page up by its height (some 240 px on
          // a phone) and put the next red card's Acknowledge button where this one was.
          // What else is open is asked first (the service's list, /api/alarms), so the banner
          // gives way to the whole notice at once: one move, made up for (keepPlace).
          button.textContent = "Acknowledged";
          var closed = form.querySelector('input[name="incident"]');
          var incident = closed ? closed.value : "";
          return stillOpen(incident).then(function (open) {
            // the card as it is now: the feed may have replaced it meanwhile (the tapped one,
            // detached, measured 0 and the page moved up under the finger uncorrected)
            var shown = card && document.getElementById(card.id);
            var top = shown ? shown.getBoundingClientRect().top : 0;
            acked = { device: card ? card.dataset.device : "", name: cardName(card), at: new Date(),
                      earlier: answer.earlier || "" };
            showNotice(answer.message || ackLine(false)[0]);
            notice.classList.toggle("ack-done", !answer.message);
            // "message" (the treadmill told later) as any: the others open go on, listed
            // (its words kept, not the green line); before, all went silent, none listed
            if (open === null) keepOthers(incident, card, !answer.message);
            else {
              silence();
              showStillOpen(open);
            }
            keepPlace(card, top);
            focusNotice(button);
          });
        });
      })
      .catch(function (err) {
        // What the caregiver can do, on the button and where the alarm was: "Acknowledge
        // (failed: HTTP 500)" said neither that the alert is still open nor what to do. The
        // status stays for whoever looks into it: the console, and the button's tooltip.
        if (err.sent) {
          // it went through, most likely: the card (the event's page) is asked again to show
          // whether the alert is closed; the button stays, should it still be open
          console.warn("RetroGuard: the acknowledgement was sent (" + err.message + ")");
          button.disabled = false;
          button.textContent = "Acknowledge";
          button.title = "Last try: " + err.message;
          showNotice("Acknowledgement sent, but the service's answer could not be read. " +
            "The card is reloaded to show whether the alert is closed.");
          if (notice) notice.classList.add("ack-warn");
          if (form.id === "ack-form") reload(); else resync();
          return;
        }
        var said = ackFailure(err.status);
        console.warn("RetroGuard: the acknowledgement failed (" + err.message + ")");
        button.disabled = false;
        button.textContent = said[0];
        button.title = "Last try: " + err.message;
        showNotice(said[1]);
        if (notice) notice.classList.add("ack-warn");
      });
  });
  // The pressed Acknowledge goes with its card (the feed turns it calm, without one): the
  // keyboard's focus fell to the page's top, and a screen reader said nothing of where it
  // was. It moves to the notice that says the alert is closed and lists what is still open,
  // its links next under Tab, the page left where it stands (the card under the thumb).
  // Only from the button (the card's, or the banner's that pressed it, hidden with the
  // alarm): a caregiver who has moved on meanwhile keeps their place.
  function focusNotice(button) {
    var at = document.activeElement;
    var pressed = !at || at === button || at === document.body || !!at.closest("#alarm-banner");
    if (!notice || !pressed) return;
    notice.setAttribute("tabindex", "-1");
    notice.focus({ preventScroll: true });
  }
  // A failed acknowledgement in words, by the answer's HTTP status (none: the service was not
  // reached): [the button's label, the notice]. The alert stays open; its reminders go on.
  function ackFailure(status) {
    var open = " The alert is still open and its reminders go on.";
    if (!status) return ["Not sent — try again", "Could not reach the service — check this " +
      "device's connection, then press Acknowledge again." + open];
    if (status === 401) return ["Not sent — sign in again", "Not acknowledged: you are signed " +
      "out. Reload the page, sign in and press Acknowledge again." + open];
    if (status === 403) return ["Not sent — reload the page", "Not acknowledged: this page is " +
      "from an earlier sign-in. Reload the page and press Acknowledge again." + open];
    if (status === 404) return ["Not sent — reload the page", "Not acknowledged: this treadmill " +
      "or event is no longer on your dashboard. Reload the page."];
    if (status === 503) return ["Not sent — try again", "Not acknowledged: the service cannot " +
      "record it just now (its database or connection is down). Press Acknowledge again in a " +
      "moment." + open];
    if (status >= 500) return ["Not sent — try again", "Not acknowledged: the service had a " +
      "problem. Press Acknowledge again in a moment." + open];
    return ["Not sent — reload the page", "Not acknowledged: the service could not take it. " +
      "Reload the page and press Acknowledge again." + open];
  }

  // A test alarm pages every contact: ask first, then say what to expect.
  var testForm = document.getElementById("test-alarm-form");
  if (testForm) testForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!window.confirm("Send a test alarm? The treadmill chirps and every contact is notified (marked TEST).")) return;
    var button = testForm.querySelector("button"), note = document.getElementById("test-alarm-status");
    button.disabled = true;
    fetch(testForm.action, { method: "POST", headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        // the service words the outcome (routes/device_commands.py: OUTCOMES), sent or not
        if (r.status === 409) return r.json().then(function (answer) { note.textContent = answer.message; });
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json().then(function (answer) { note.textContent = answer.message; });
      })
      .catch(function (err) { note.textContent = "The test alarm could not be sent (" + err.message + ")."; })
      .then(function () { button.disabled = offlineNow("test-alarm"); });
  });

  // A self-test only reads (the belt is not touched): no question first. The answer is the
  // service's words (caregiver/self_test.py), asked for every 1.5 s while it waits; the
  // service says "no answer" after its own time limit, which ends the asking.
  var checkForm = document.getElementById("self-test-form");
  var checkResult = document.getElementById("self-test-result"), checkTimer = null;
  function showCheck(html) {
    checkResult.innerHTML = html;
    if (window.retroguardLocalTime) window.retroguardLocalTime(checkResult);
  }
  function waitForCheck() {
    var shown = checkResult.querySelector("[data-state]");
    clearTimeout(checkTimer);  // one asking at a time, however often the button is pressed
    if (!shown || shown.dataset.state !== "pending") return;
    checkTimer = setTimeout(function () {
      fetch(checkResult.dataset.url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (answer) { showCheck(answer.html); })
        .catch(function () {})  // asked again below: a page whose service restarts catches up
        .then(waitForCheck);
    }, 1500);
  }
  if (checkForm && checkResult) {
    checkForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var button = checkForm.querySelector("button"), note = document.getElementById("self-test-status");
      button.disabled = true;
      fetch(checkForm.action, { method: "POST", headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) {
          if (r.status === 409) return r.json().then(function (answer) { note.textContent = answer.message; });
          if (!r.ok) throw new Error("HTTP " + r.status);
          // the result itself says "Checking the treadmill…" until the answer replaces it
          return r.json().then(function (answer) { note.textContent = ""; showCheck(answer.html); waitForCheck(); });
        })
        .catch(function (err) { note.textContent = "The treadmill could not be asked (" + err.message + ")."; })
        .then(function () { button.disabled = offlineNow("self-test"); });
    });
    waitForCheck();  // a page opened while a check waits
  }

  // The rendered banner's words when this tab silenced some of its alarms (the words named
  // them): those of the others, as the answer will raise them (the newest, "+N more" the
  // other devices), before the first paint. Kept as rendered, the answer then took "+1 more:
  // Dad's treadmill" off a phone's banner, a line, and the cards moved up under a finger.
  function wordRendered() {
    var all = [];
    try { all = JSON.parse(banner.dataset.alarms || "[]"); } catch (e) { /* as rendered */ }
    var left = all.filter(function (a) { return !heard.has(a.event); });
    if (!left.length || left.length === all.length) return;
    var newest = left[left.length - 1];
    setHyphened(document.getElementById("alarm-text"), newest.text);
    setMore(moreOf(left, newest));
    document.getElementById("alarm-link").setAttribute("href", newest.link);
    banner.dataset.incident = newest.incident;
  }
  fillCsrf(document);
  updateSince();
  setInterval(updateSince, 15000);
  // The banner rendered with the falls open then (data-rendered, as missedAlarms words it):
  // in place from the first paint, so nothing under a finger moves when the alarms come; kept
  // while this page alarms for them, hidden at once (before the first paint) when this tab
  // silenced them or the page before a reload alarmed for them.
  if (banner.dataset.rendered) {
    delete banner.dataset.rendered;
    var unheard = rendered.filter(function (id) { return !heard.has(id); });
    if (!banner.hidden && unheard.length) {
      early = unheard;
      wordRendered();
      var here = document.querySelector(".event-detail[data-incident]");
      document.getElementById("alarm-link").hidden = !!(here && here.dataset.incident === banner.dataset.incident);
      named = banner.dataset.incident || "";  // its Acknowledge closes that one
      showBannerAck();
      showAlarmSound();
    } else {
      banner.hidden = true;
    }
  }
  // a page opened afresh with an open critical incident nobody answered alarms at once
  if (rendered.some(function (id) { return !heard.has(id); })) missedAlarms();
  // one rendered with an amber card says what pages in the notice, as the live feed would
  // (or rendered with the amber notice: kept current from the service's list)
  else if (document.querySelector('.card[data-level="warn"]') || warning()) askWarnings();
  watchHeld();  // the notice as rendered, until an answer words it again
  connect();
})();
