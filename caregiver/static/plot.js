// The event plot: acceleration magnitude, tilt from upright and angular rate, with a labelled
// line for each moment the monitor marked (the belt stopping at 0 s, the impact, the fall's confirmation).
(function () {
  "use strict";
  var box = document.getElementById("plots");
  if (!box || !window.uPlot) return;
  var COLOURS = { "belt stopped": "#d00000", "impact": "#6a00a8", "fall confirmed": "#000000" };

  var ROW = 16;  // CSS px: one label's row in the band above the plot

  // Each mark's line runs through the plot; its label sits in a band above the plot, a row of
  // its own per mark (the belt stopping and the impact are often a few pixels apart), on a white
  // ground, and on the line's left when the right would leave the plot: never across a trace.
  function markLines(marks) {
    return function (u) {
      var ctx = u.ctx, px = devicePixelRatio, right = u.bbox.left + u.bbox.width;
      ctx.save();
      ctx.font = (13 * px) + "px sans-serif";
      ctx.textAlign = "left"; ctx.textBaseline = "alphabetic";
      marks.forEach(function (m, i) {
        var x = u.valToPos(m.t, "x", true);
        var colour = COLOURS[m.label] || "#d00000";
        var y = u.bbox.top - (marks.length - 1 - i) * ROW * px - 4 * px;
        ctx.strokeStyle = colour; ctx.lineWidth = 2 * px;
        ctx.setLineDash(m.label === "belt stopped" ? [] : [6 * px, 4 * px]);
        ctx.beginPath(); ctx.moveTo(x, y + 2 * px); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        var w = ctx.measureText(m.label).width, at = x + 4 * px;
        if (at + w > right) at = x - 4 * px - w;
        ctx.fillStyle = "#ffffff"; ctx.fillRect(at - 2 * px, y - 12 * px, w + 4 * px, 15 * px);
        ctx.fillStyle = colour; ctx.fillText(m.label, at, y);
      });
      ctx.restore();
    };
  }

  function chart(title, unit, t, values, color, marks) {
    var wrap = document.createElement("div");
    wrap.className = "plot";
    var h = document.createElement("h3");
    h.textContent = title;
    wrap.appendChild(h);
    box.appendChild(wrap);
    var width = Math.max(280, Math.min(box.clientWidth, 1100));
    return new uPlot({
      width: width, height: 200 + ROW * marks.length,
      padding: [ROW * marks.length + 4, null, null, null],
      scales: { x: { time: false } },
      axes: [{ label: "seconds (0 = belt stopped)", font: "14px sans-serif" }, { label: unit, font: "14px sans-serif", size: 60 }],
      series: [{}, { label: title, stroke: color, width: 2, spanGaps: false }],
      legend: { show: false },
      hooks: { draw: [markLines(marks)] }
    }, [t, values], wrap);
  }

  fetch(box.dataset.plot, { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(function (s) {
      chart("Acceleration", "g", s.t, s.accel_g, "#000000", s.marks);
      chart("Tilt from upright", "degrees", s.t, s.tilt_deg, "#0033aa", s.marks);
      chart("Turning speed", "deg/s", s.t, s.rate_dps, "#8a4b00", s.marks);
      var note = document.createElement("p");
      note.className = "hint";
      note.textContent = "Upright is " + s.upright + ".";
      box.appendChild(note);
      box.dataset.marks = s.marks.map(function (m) { return m.label; }).join("|");
      box.dataset.rendered = "1";
    })
    .catch(function (err) { box.textContent = "The plot could not be loaded: " + err.message; });
})();
