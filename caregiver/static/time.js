// Local time: each <time datetime="...Z"> the server rendered (its text is in the service's
// zone, kept as the tooltip) is shown in this browser's own zone and language.
(function () {
  "use strict";
  var formats = {
    datetime: { weekday: "short", day: "numeric", month: "short", year: "numeric",
                hour: "2-digit", minute: "2-digit", second: "2-digit" },
    minute: { weekday: "short", day: "numeric", month: "short", year: "numeric",
              hour: "2-digit", minute: "2-digit" },
    date: { weekday: "short", day: "numeric", month: "short", year: "numeric" },
    time: { hour: "2-digit", minute: "2-digit", second: "2-digit" }
  };
  var made = {};
  function formatter(name) {  // making one costs far more than using it: once per format
    var key = formats[name] ? name : "datetime";
    return made[key] || (made[key] = new Intl.DateTimeFormat(undefined, formats[key]));
  }
  function localise(root) {
    (root || document).querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var moment = new Date(el.getAttribute("datetime"));
      if (isNaN(moment.getTime())) return;
      el.title = el.textContent;
      el.textContent = formatter(el.dataset.format).format(moment);
      el.dataset.local = "1";
    });
  }
  window.retroguardLocalTime = localise;
  localise(document);
})();
