// Each week of a chart said by its Monday as the page says every date (time.js's "day":
// "Nov 30" in an American browser): the server's "30 Nov" beside the table's "Mon, Nov 30"
// read as two ways of writing dates. The server's labels where the browser cannot.
window.retroguardWeekLabels = function (data) {
  var say = window.retroguardDay;
  return data.labels.map(function (label, i) {
    var day = say && data.mondays && data.mondays[i] ? say(data.mondays[i]) : null;
    return day || label;
  });
};

// The weeks a chart's x axis names, "" for the others: the newest always (the week the physio
// looks at first), then every so many back from it, each name some 70 px from the next.
// Counted from the oldest with the newest added on top, the newest could sit one week from
// the last one counted, the two names run together ("Nov 23Nov 30").
window.retroguardAxisWeeks = function (labels, plotWidth) {
  var n = labels.length;
  var every = Math.ceil(n / Math.max(1, Math.floor(plotWidth / 70)));
  return labels.map(function (label, i) { return (n - 1 - i) % every === 0 ? label : ""; });
};

// The progress chart: sessions done per week (bars) against the sessions prescribed (uPlot):
// adherence, as the page's panels, the report and the session summary say the week
// (core.progress.week_goal_words). It was minutes backward against 3 x 10 min, a third
// way of drawing the goal, which a 2/2 week passed without being at goal.
(function () {
  "use strict";
  var box = document.getElementById("progress-chart");
  if (!box || !window.uPlot) return;

  function goalLine(goal) {
    return function (u) {
      var y = u.valToPos(goal, "y", true);
      var x0 = u.valToPos(u.scales.x.min, "x", true), x1 = u.valToPos(u.scales.x.max, "x", true);
      var ctx = u.ctx, r = devicePixelRatio;
      ctx.save();
      ctx.strokeStyle = "#b00000"; ctx.lineWidth = 3 * r; ctx.setLineDash([10 * r, 6 * r]);
      ctx.beginPath(); ctx.moveTo(x0, y); ctx.lineTo(x1, y); ctx.stroke();
      ctx.setLineDash([]);
      ctx.textAlign = "left"; ctx.textBaseline = "bottom";
      ctx.fillStyle = "#b00000"; ctx.font = "bold " + (15 * r) + "px sans-serif";
      ctx.fillText("prescribed " + goal, x0 + 6 * r, y - 6 * r);
      ctx.restore();
    };
  }

  function draw(s) {
    var n = s.labels.length;
    s.labels = window.retroguardWeekLabels(s);
    var x = s.labels.map(function (_, i) { return i; });
    var top = Math.max(s.prescribed * 1.25, Math.max.apply(null, s.done.concat([0])) * 1.1);
    var width = Math.max(300, Math.min(box.clientWidth, 1100));
    var bars = uPlot.paths.bars({ size: [0.7, 60], align: 0 });
    new uPlot({
      width: width, height: width < 500 ? 240 : 300,
      scales: { x: { time: false, range: [-0.6, n - 0.4] }, y: { range: [0, top] } },
      axes: [
        { font: "15px sans-serif", stroke: "#000", grid: { show: false },
          splits: function () { return x; },
          values: function (u, splits) {
            var named = window.retroguardAxisWeeks(s.labels, u.bbox.width / devicePixelRatio);
            box.dataset.axis = named.join("|");  // the names drawn, for a test to read
            return splits.map(function (v) { return named[v] || ""; });
          } },
        { label: "sessions done", font: "15px sans-serif", labelFont: "bold 15px sans-serif", stroke: "#000", size: 55,
          incrs: [1, 2, 5, 10] }
      ],
      series: [{}, { label: "sessions done", fill: "#1f3f77", stroke: "#000", width: 1, paths: bars, points: { show: false } }],
      legend: { show: false },
      cursor: { show: false },
      hooks: { draw: [goalLine(s.prescribed)] }
    }, [x, s.done], box);
    box.dataset.weeks = s.labels.join("|");  // the weeks as said, for a test to read
    box.dataset.rendered = "1";
  }

  fetch(box.dataset.plot, { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(draw)
    .catch(function (err) { box.textContent = "The chart could not be loaded: " + err.message; });
})();

// Balance and gait, week by week: each metric's weekly median (line and points) inside its
// 95 % band (shaded), and dashed lines at the first week's median +/- the metric's MDC95:
// a later week outside them is a change beyond the measured noise, inside them it is not.
(function () {
  "use strict";
  var box = document.getElementById("trends");
  if (!box || !window.uPlot || !box.querySelector(".trend")) return;

  // ``said``: the MDC95 as the page's text says it (caregiver/trends.py noise_said)
  function noiseLines(centre, mdc, said, unit) {
    return function (u) {
      var ctx = u.ctx, r = devicePixelRatio;
      var x0 = u.bbox.left, x1 = u.bbox.left + u.bbox.width;
      ctx.save();
      ctx.strokeStyle = "#6a6a6a"; ctx.lineWidth = 2 * r; ctx.setLineDash([8 * r, 5 * r]);
      [centre - mdc, centre + mdc].forEach(function (v) {
        var y = u.valToPos(v, "y", true);
        ctx.beginPath(); ctx.moveTo(x0, y); ctx.lineTo(x1, y); ctx.stroke();
      });
      ctx.setLineDash([]);
      ctx.fillStyle = "#3a3a3a"; ctx.font = (13 * r) + "px sans-serif";
      ctx.textAlign = "left"; ctx.textBaseline = "bottom";
      var amount = said + (unit ? " " + unit : "");
      var narrow = u.bbox.width / r < 420;
      ctx.fillText(narrow ? "noise \u00b1" + amount : "first week \u00b1 noise (MDC95 " + amount + ")",
        x0 + 4 * r, u.valToPos(centre + mdc, "y", true) - 3 * r);
      ctx.restore();
    };
  }

  function draw(t, el) {
    var n = t.labels.length;
    t.labels = window.retroguardWeekLabels(t);
    var x = t.labels.map(function (_, i) { return i; });
    var centre = t.median[0];
    var lows = t.low.concat([centre - t.mdc95]), highs = t.high.concat([centre + t.mdc95]);
    var lo = Math.min.apply(null, lows), hi = Math.max.apply(null, highs);
    var pad = (hi - lo) * 0.12 || 1;
    var width = Math.max(280, Math.min(el.clientWidth || box.clientWidth, 1100));
    new uPlot({
      width: width, height: width < 500 ? 200 : 240,
      scales: { x: { time: false, range: [-0.5, Math.max(n - 0.5, 0.5)] }, y: { range: [lo - pad, hi + pad] } },
      axes: [
        { font: "14px sans-serif", stroke: "#000", grid: { show: false },
          splits: function () { return x; },
          values: function (u, splits) {
            var named = window.retroguardAxisWeeks(t.labels, u.bbox.width / devicePixelRatio);
            el.dataset.axis = named.join("|");
            return splits.map(function (v) { return named[v] || ""; });
          } },
        { label: t.unit || "", font: "14px sans-serif", labelFont: "bold 14px sans-serif", stroke: "#000", size: 60 }
      ],
      series: [
        {},
        { label: "band high", stroke: "rgba(31,63,119,0.5)", width: 1, points: { show: false } },
        { label: "band low", stroke: "rgba(31,63,119,0.5)", width: 1, points: { show: false } },
        { label: "median", stroke: "#1f3f77", width: 3, points: { show: true, size: 9, fill: "#1f3f77" } }
      ],
      bands: [{ series: [1, 2], fill: "rgba(31,63,119,0.18)" }],
      legend: { show: false },
      cursor: { show: false },
      hooks: { draw: [noiseLines(centre, t.mdc95, t.noise, t.unit)] }
    }, [x, t.high, t.low, t.median], el);
  }

  fetch(box.dataset.plot, { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(function (data) {
      data.trends.forEach(function (t) {
        var wrap = document.getElementById("trend-" + t.key);
        var el = wrap && wrap.querySelector(".trend-chart");
        if (el) draw(t, el);
      });
      box.dataset.rendered = String(data.trends.length);
    })
    .catch(function (err) { box.insertAdjacentText("afterbegin", "The trend charts could not be loaded: " + err.message); });
})();
