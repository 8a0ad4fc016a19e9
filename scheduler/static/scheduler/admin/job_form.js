// Job edit form: show the fields of the selected job type and a live preview of fire times.
(function () {
  "use strict";
  function byId(id) { return document.getElementById(id); }
  // The fields the preview depends on; moments come as the admin's date (_0) and time (_1) boxes.
  var PREVIEWED = ["job_type", "timezone", "cron_expression", "interval_seconds", "interval_minutes",
    "interval_hours", "interval_days", "run_at_0", "run_at_1", "start_at_0", "start_at_1", "end_at_0", "end_at_1"];
  function fieldValue(name) {
    var el = byId("id_" + name);
    return el ? el.value : "";
  }
  function toggle() {
    var type = fieldValue("job_type");
    // Each type's own fields (1 interval, 2 cron, 3 date); a date job runs once, so no window either.
    var shown = {
      "schedule-interval": type !== "2" && type !== "3",
      "schedule-cron": type !== "1" && type !== "3",
      "schedule-date": type === "3",
      "schedule-bounds": type !== "3"
    };
    Object.keys(shown).forEach(function (cls) {
      document.querySelectorAll("fieldset." + cls).forEach(function (fs) {
        fs.style.display = shown[cls] ? "" : "none";
      });
    });
  }
  var timer = null;
  function preview() {
    var target = byId("job-preview");
    if (!target) { return; }
    var params = new URLSearchParams();
    PREVIEWED.forEach(function (name) { params.set(name, fieldValue(name)); });
    var url = window.location.pathname.replace(/(add|\d+\/change)\/?$/, "") + "preview/?" + params;
    fetch(url, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        var list = document.createElement("ul");
        list.id = "job-preview";
        var lines = data.fireTimes
          ? [data.description].concat(data.fireTimes)
          : Object.keys(data.errors || {}).map(function (k) { return k + ": " + data.errors[k].join(" "); });
        lines.forEach(function (line) {
          var li = document.createElement("li");
          li.textContent = line;
          list.appendChild(li);
        });
        target.replaceWith(list);
      })
      .catch(function () {});
  }
  function schedule() {
    toggle();
    clearTimeout(timer);
    timer = setTimeout(preview, 300);
  }
  document.addEventListener("DOMContentLoaded", function () {
    PREVIEWED.forEach(function (name) {
      var el = byId("id_" + name);
      if (el) { el.addEventListener("input", schedule); el.addEventListener("change", schedule); }
    });
    schedule();
  });
})();
