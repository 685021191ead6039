// Local time: each <time datetime="...Z"> the server rendered (its text is in the service's
// zone, kept as the tooltip) is shown in this browser's own zone and language.
(function () {
  "use strict";
  // Short where it can be: the year only when it is not this one. The 24-hour clock, as the
  // server's text and notifications say it (caregiver/localtime.py, "14:05:12"): a 12-hour
  // language with "2-digit" hours read "01:13:14 AM". A time names its zone ("UTC", "CET"),
  // as the server's text and the banner do: "Dec 6, 10:46:30" said none.
  var clock = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" };
  var formats = {
    datetime: Object.assign({ day: "numeric", month: "short", second: "2-digit" }, clock),
    minute: Object.assign({ weekday: "short", day: "numeric", month: "short" }, clock),
    date: { weekday: "short", day: "numeric", month: "short" },
    time: Object.assign({ second: "2-digit" }, clock),
    // a session's start under its date (the progress table's Date column: two short lines,
    // not "Mon, Nov 30, 09:00 UTC" wrapped word by word into five)
    clock: clock,
    // a calendar day, not a moment: a walker's week by its Monday ("2026-11-30"), said as
    // every date here is ("Nov 30" in an American browser, "30 Nov" in a British one), in no
    // zone (its midnight in UTC read in New York was the Sunday before)
    day: { day: "numeric", month: "short", timeZone: "UTC" },
    // a month of a walker's earlier weeks on the progress page ("2026-09-01"), with its year
    month: { month: "long", year: "numeric", timeZone: "UTC" }
  };
  var bare = { time: true, clock: true };  // no date in them: never a year
  var made = {}, thisYear = new Date().getFullYear();
  function formatter(name, moment) {  // making one costs far more than using it: one per kind
    var key = formats[name] ? name : "datetime";
    var year = formats[key].timeZone === "UTC" ? moment.getUTCFullYear() : moment.getFullYear();
    var withYear = !bare[key] && year !== thisYear;
    var id = key + (withYear ? "+year" : "");
    if (!made[id]) {
      var options = Object.assign({}, formats[key]);
      if (withYear) options.year = "numeric";
      made[id] = new Intl.DateTimeFormat(undefined, options);
    }
    return made[id];
  }
  // A zone with no abbreviation in this language is its offset, which browsers write
  // "GMT-3", "GMT+5:30" (some languages "UTC\u22123"): said as the service says it
  // (core.zones.zone_said), "UTC-03", "UTC+05:30".
  var offsetName = /^(?:GMT|UTC)([+\-\u2212])(\d{1,2})(?::?(\d{2}))?$/;
  function zoneSaid(name) {
    var m = offsetName.exec(name);
    if (!m) return name;
    var hours = ("0" + m[2]).slice(-2), minutes = m[3] && m[3] !== "00" ? ":" + m[3] : "";
    return "UTC" + (m[1] === "+" ? "+" : "-") + hours + minutes;
  }
  // The zone kept on its time's line ("09:00" over "UTC" read as a time in no zone): the
  // space before it a no-break one, the server's one rule for its pages, notifications and
  // PDF (ZONE_JOIN, caregiver/localtime.py).
  function format(fmt, moment) {
    var parts = fmt.formatToParts(moment);
    return parts.map(function (part, i) {
      if (part.type === "timeZoneName") return zoneSaid(part.value);
      var next = parts[i + 1];
      return part.type === "literal" && next && next.type === "timeZoneName"
        ? part.value.replace(/ /g, "\u00a0") : part.value;
    }).join("");
  }
  function localise(root) {
    (root || document).querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var moment = new Date(el.getAttribute("datetime"));
      if (isNaN(moment.getTime())) return;
      el.title = el.textContent;
      el.textContent = format(formatter(el.dataset.format, moment), moment);
      el.dataset.local = "1";
    });
  }
  window.retroguardLocalTime = localise;
  // a week's Monday ("2026-11-30") said as the page's <time data-format="day"> say it, for
  // the progress page's charts (progress.js); null for no date
  window.retroguardDay = function (iso) {
    var moment = new Date(iso);
    return isNaN(moment.getTime()) ? null : format(formatter("day", moment), moment);
  };
  localise(document);
})();
