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
    time: Object.assign({ second: "2-digit" }, clock)
  };
  var made = {}, thisYear = new Date().getFullYear();
  function formatter(name, moment) {  // making one costs far more than using it: one per kind
    var key = formats[name] ? name : "datetime";
    var withYear = key !== "time" && moment.getFullYear() !== thisYear;
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
  function format(fmt, moment) {
    return fmt.formatToParts(moment).map(function (part) {
      return part.type === "timeZoneName" ? zoneSaid(part.value) : part.value;
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
  localise(document);
})();
