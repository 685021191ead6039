// The plan page: follows the treadmill's answer to a plan or progression still pending
// (GET /api/devices/<id>/plan-commands?walker=<the walker shown>, the section's data-url)
// until it is accepted, refused or not answered.
(function () {
  "use strict";
  var box = document.getElementById("plan-answers");
  if (!box) return;
  var tries = 0;

  function pending() {
    return box.querySelectorAll('tr[data-state="pending"]').length > 0;
  }

  function update(commands) {
    commands.forEach(function (c) {
      var row = box.querySelector('tr[data-request-id="' + c.request_id + '"]');
      if (!row) return;
      row.setAttribute("data-state", c.state);
      var cell = row.querySelector(".answer");
      cell.textContent = c.text;
      cell.className = "answer answer-" + c.state.replace(" ", "-");
    });
  }

  function poll() {
    if (!pending() || tries++ > 120) return;
    fetch(box.getAttribute("data-url"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data) update(data.commands);
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 2000); });
  }

  setTimeout(poll, 500);
})();
