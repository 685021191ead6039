// The event plot: acceleration magnitude, tilt and angular rate with the trip point marked (uPlot).
(function () {
  "use strict";
  var box = document.getElementById("plots");
  if (!box || !window.uPlot) return;

  function tripLine(u) {
    var x = u.valToPos(0, "x", true);
    var ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#d00000"; ctx.lineWidth = 3 * devicePixelRatio;
    ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    ctx.fillStyle = "#d00000"; ctx.font = (14 * devicePixelRatio) + "px sans-serif";
    ctx.fillText("trip", x + 4 * devicePixelRatio, u.bbox.top + 16 * devicePixelRatio);
    ctx.restore();
  }

  function chart(title, unit, t, values, color) {
    var wrap = document.createElement("div");
    wrap.className = "plot";
    var h = document.createElement("h3");
    h.textContent = title;
    wrap.appendChild(h);
    box.appendChild(wrap);
    var width = Math.max(280, Math.min(box.clientWidth, 1100));
    return new uPlot({
      width: width, height: 200,
      scales: { x: { time: false } },
      axes: [{ label: "seconds (0 = trip)", font: "14px sans-serif" }, { label: unit, font: "14px sans-serif", size: 60 }],
      series: [{}, { label: title, stroke: color, width: 2, spanGaps: false }],
      legend: { show: false },
      hooks: { draw: [tripLine] }
    }, [t, values], wrap);
  }

  fetch(box.dataset.plot, { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(function (s) {
      chart("Acceleration magnitude", "g", s.t, s.accel_g, "#000000");
      chart("Tilt from upright", "degrees", s.t, s.tilt_deg, "#0033aa");
      chart("Angular rate", "deg/s", s.t, s.rate_dps, "#8a4b00");
      box.dataset.rendered = "1";
    })
    .catch(function (err) { box.textContent = "The plot could not be loaded: " + err.message; });
})();
