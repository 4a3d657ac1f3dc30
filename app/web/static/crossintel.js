// crossintel web client — small progressive enhancement, written for this project.
// Every page works without it; with it, the dashboard is live and forms are friendlier.
"use strict";

(function () {
  // --- Live notifications (dashboard) ------------------------------------------------
  function liveNotifications(panel) {
    if (!("EventSource" in window)) return;
    var list = panel.querySelector("#notifications");
    var state = panel.querySelector("[data-live-state]");
    var source = new EventSource(panel.getAttribute("data-events"));
    source.addEventListener("notification", function (event) {
      var n = JSON.parse(event.data);
      var empty = list.querySelector("li.empty");
      if (empty) empty.remove();
      var item = document.createElement("li");
      item.className = "unread fresh";
      item.setAttribute("data-kind", n.kind);
      var title = document.createElement("strong");
      title.textContent = n.title;
      item.appendChild(title);
      if (n.body) {
        var body = document.createElement("span");
        body.className = "body";
        body.textContent = " — " + n.body;
        item.appendChild(body);
      }
      var when = document.createElement("span");
      when.className = "muted";
      when.textContent = " · " + new Date(n.created_at).toLocaleString("fr-FR");
      item.appendChild(when);
      if (n.case_id) {
        item.appendChild(document.createTextNode(" · "));
        var link = document.createElement("a");
        link.href = "/dossiers/" + n.case_id;
        link.textContent = "voir le dossier";
        item.appendChild(link);
      }
      list.insertBefore(item, list.firstChild);
    });
    source.addEventListener("open", function () {
      if (state) state.textContent = "(mise à jour en direct)";
    });
    source.addEventListener("error", function () {
      // Closed for good: the session ended (idle, sign-out) — reload goes to sign-in.
      if (source.readyState === EventSource.CLOSED) {
        window.location.reload();
      } else if (state) {
        state.textContent = "(reconnexion…)";
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.querySelector("[data-events]");
    if (panel) liveNotifications(panel);
  });
})();
