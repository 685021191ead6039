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

  // The time axis runs over whole seconds, from the first before the recording to the first
  // after it (-4 to 10 s): uPlot's own range stopped at the last sample, 9.99 s, and a 10 s
  // window's ticks at 9. A tick each second where there is room, each two on a phone.
  function wholeSeconds(t) {
    var lo = Math.floor(t.length ? t[0] : 0), hi = Math.ceil(t.length ? t[t.length - 1] : 1);
    return [lo, hi > lo ? hi : lo + 1];
  }
  function secondTicks(step) {
    return function (u, axisIdx, min, max) {
      var ticks = [];
      for (var s = Math.ceil(min / step) * step; s <= max + 1e-9; s += step) ticks.push(s);
      return ticks;
    };
  }
  // The value axis is as wide as the widest number of the three charts', the unit said in the
  // chart's heading: a fixed 60 px and a rotated unit label took a third of a phone's chart
  // (90 of 300 px). One width for the three, so their 0 s lines stand one above another.
  var axisRoom = 0;
  function fitted(u, values, axisIdx, cycleNum) {
    var axis = u.axes[axisIdx];
    if (cycleNum > 1) return axis._size;
    var widest = (values || []).reduce(function (w, v) { return v.length > w.length ? v : w; }, "");
    u.ctx.font = axis.font[0];
    var room = Math.ceil(axis.ticks.size + axis.gap + u.ctx.measureText(widest).width / devicePixelRatio) + 4;
    axisRoom = Math.max(axisRoom, room);
    return axisRoom;
  }

  // ``zero``: what 0 s is (caregiver/plot.py PlotSeries.zero): the belt stopping in a
  // recording, the detection in an older monitor's window
  function chart(title, unit, t, values, color, marks, zero) {
    var wrap = document.createElement("div");
    wrap.className = "plot";
    var h = document.createElement("h3");
    h.textContent = title + " (" + unit + ")";
    wrap.appendChild(h);
    box.appendChild(wrap);
    var width = Math.max(280, Math.min(box.clientWidth, 1100));
    var step = width < 500 ? 2 : 1, range = wholeSeconds(t), axis = "seconds (0 = " + zero + ")";
    var u = new uPlot({
      width: width, height: 200 + ROW * marks.length,
      padding: [ROW * marks.length + 4, 12, null, 4],
      scales: { x: { time: false, range: range } },
      axes: [
        { label: axis, font: "14px sans-serif", splits: secondTicks(step),
          values: function (u, splits) { return splits.map(String); } },
        { font: "14px sans-serif", size: fitted }
      ],
      series: [{}, { label: title, stroke: color, width: 2, spanGaps: false }],
      legend: { show: false },
      hooks: { draw: [markLines(marks)] }
    }, [t, values], wrap);
    // the seconds the time axis says, for a test to read as a person does
    wrap.dataset.seconds = secondTicks(step)(u, 0, range[0], range[1]).join(" ");
    wrap.dataset.timeAxis = axis;
    return u;
  }

  fetch(box.dataset.plot, { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(function (s) {
      var charts = [
        chart("Acceleration", "g", s.t, s.accel_g, "#000000", s.marks, s.zero),
        chart("Tilt from upright", "degrees", s.t, s.tilt_deg, "#0033aa", s.marks, s.zero),
        chart("Turning speed", "deg/s", s.t, s.rate_dps, "#8a4b00", s.marks, s.zero)
      ];
      // the widest axis is known once the three are laid out (uPlot lays a chart out after
      // its constructor returns): the others then take its width
      return new Promise(function (done) { setTimeout(done, 0); }).then(function () {
        charts.forEach(function (u) {
          if (u.axes[1]._size !== axisRoom) u.setSize({ width: u.width, height: u.height });
        });
        return s;
      });
    })
    .then(function (s) {
      var note = document.createElement("p");
      note.className = "hint";
      note.textContent = "Upright is " + s.upright + ".";
      box.appendChild(note);
      box.dataset.marks = s.marks.map(function (m) { return m.label; }).join("|");
      box.dataset.rendered = "1";
    })
    .catch(function (err) { box.textContent = "The plot could not be loaded: " + err.message; });
})();
