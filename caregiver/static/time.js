// Local time: each <time datetime="...Z"> the server rendered (its text is in the service's
// zone, kept as the tooltip) is shown in this browser's own zone and language.
(function () {
  "use strict";
  // Short where it can be: the year only when it is not this one.
  var formats = {
    datetime: { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit" },
    minute: { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" },
    date: { weekday: "short", day: "numeric", month: "short" },
    time: { hour: "2-digit", minute: "2-digit", second: "2-digit" }
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
  function localise(root) {
    (root || document).querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var moment = new Date(el.getAttribute("datetime"));
      if (isNaN(moment.getTime())) return;
      el.title = el.textContent;
      el.textContent = formatter(el.dataset.format, moment).format(moment);
      el.dataset.local = "1";
    });
  }
  window.retroguardLocalTime = localise;
  localise(document);
})();
