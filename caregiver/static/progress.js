// The progress chart: minutes walked backward per week (bars) against the weekly goal (uPlot).
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
      ctx.fillText("goal " + goal + " min", x0 + 6 * r, y - 6 * r);
      ctx.restore();
    };
  }

  function draw(s) {
    var n = s.labels.length;
    var x = s.labels.map(function (_, i) { return i; });
    var top = Math.max(s.goal_min * 1.25, Math.max.apply(null, s.backward_min.concat([0])) * 1.1);
    var width = Math.max(300, Math.min(box.clientWidth, 1100));
    var bars = uPlot.paths.bars({ size: [0.7, 60], align: 0 });
    new uPlot({
      width: width, height: width < 500 ? 240 : 300,
      scales: { x: { time: false, range: [-0.6, n - 0.4] }, y: { range: [0, top] } },
      axes: [
        { font: "15px sans-serif", stroke: "#000", grid: { show: false },
          splits: function () { return x; },
          values: function (u, splits) {
            var every = Math.ceil(n / Math.max(1, Math.floor(u.bbox.width / devicePixelRatio / 70)));
            return splits.map(function (v) { return (v % every === 0 || v === n - 1) ? s.labels[v] : ""; });
          } },
        { label: "minutes backward", font: "15px sans-serif", labelFont: "bold 15px sans-serif", stroke: "#000", size: 55 }
      ],
      series: [{}, { label: "minutes backward", fill: "#1f3f77", stroke: "#000", width: 1, paths: bars, points: { show: false } }],
      legend: { show: false },
      cursor: { show: false },
      hooks: { draw: [goalLine(s.goal_min)] }
    }, [x, s.backward_min], box);
    box.dataset.rendered = "1";
  }

  fetch(box.dataset.plot, { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(draw)
    .catch(function (err) { box.textContent = "The chart could not be loaded: " + err.message; });
})();
