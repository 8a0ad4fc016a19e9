// Dashboard behaviour: refresh the [data-refresh] regions in place, and send the job action
// buttons with fetch so the page never reloads. Without JavaScript the forms still work.
(function () {
  "use strict";
  var seconds = parseInt(document.body.dataset.refreshSeconds, 10) || 5;
  var busy = null;  // the refresh in flight, if any
  var again = false;  // asked for while one was in flight: its answer may predate an action

  function stamp(text, stale) {
    var el = document.getElementById("refreshed");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("stale", !!stale);
  }

  function openDetails() {
    // Tracebacks someone opened stay open across refreshes.
    return Array.prototype.map.call(document.querySelectorAll("details[open][data-key]"), function (d) {
      return d.dataset.key;
    });
  }

  function tickedJobs() {
    // Jobs ticked for an action on many jobs stay ticked across refreshes.
    return Array.prototype.map.call(document.querySelectorAll('input[name="job"]:checked'), function (box) {
      return box.value;
    });
  }

  document.addEventListener("change", function (event) {
    var all = event.target;
    if (!all.matches || !all.matches("input[data-select-all]")) return;
    document.querySelectorAll('input[name="job"]').forEach(function (box) {
      box.checked = all.checked;
    });
  });

  function refresh() {
    // A page with nothing to refresh (a confirmation, answering a POST) is never fetched again.
    if (!document.querySelector("[data-refresh][id]")) return Promise.resolve();
    if (busy) {
      again = true;
      return busy;
    }
    var keep = openDetails();
    var ticked = tickedJobs();
    busy = fetch(window.location.href, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-Requested-With": "fetch" }
    }).then(function (response) {
      if (response.redirected || !response.ok) {
        // Logged out or the server is failing: say so rather than show old numbers as new.
        stamp("Not updated (HTTP " + response.status + "); reload the page", true);
        return;
      }
      return response.text().then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-refresh][id]").forEach(function (region) {
          var replacement = fresh.getElementById(region.id);
          if (replacement) region.replaceWith(document.importNode(replacement, true));
        });
        ticked.forEach(function (value) {
          var box = document.querySelector('input[name="job"][value="' + value + '"]');
          if (box) box.checked = true;
        });
        keep.forEach(function (key) {
          var d = document.querySelector('details[data-key="' + key + '"]');
          if (d) d.open = true;
        });
        stamp("Updated " + new Date().toLocaleTimeString(), false);
      });
    }).catch(function () {
      stamp("Not updated: server unreachable", true);
    }).then(function () {
      busy = null;
      if (again) {
        again = false;
        return refresh();
      }
    });
    return busy;
  }

  function flash(text, ok) {
    var box = document.getElementById("flash");
    if (!box) return;
    var p = document.createElement("p");
    p.className = "msg" + (ok ? " success" : " error");
    p.textContent = text;
    box.replaceChildren(p);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-action]")) return;
    event.preventDefault();
    var button = form.querySelector("button");
    if (button) button.disabled = true;
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Requested-With": "fetch" }
    }).then(function (response) {
      if (response.redirected) {
        // Sent to the login page: the session ended. Nothing was changed.
        return { ok: false, message: "Your session has ended: reload the page and log in again." };
      }
      return response.json().catch(function () {
        return { ok: false, message: "The server answered HTTP " + response.status + "." };
      });
    }).then(function (body) {
      flash(body.message, body.ok);
    }).catch(function () {
      flash("The server could not be reached; nothing was changed.", false);
    }).then(function () {
      return refresh();
    }).then(function () {
      if (button && document.body.contains(button)) button.disabled = false;
    });
  });

  window.setInterval(function () {
    if (!document.hidden) refresh();
  }, seconds * 1000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
  });
})();
