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

  // --- Record form: entity rows added and removed in place; H3 note shown with H3 --------
  // Without the script the same buttons submit the form, which comes back with the row
  // added or removed (the server renders the same rows from the same templates).
  function recordForm(form) {
    var list = form.querySelector("[data-entities]");
    var kindSelect = form.querySelector("#new_entity_kind");
    var status = form.querySelector("[data-entity-status]");
    var next = Number(list.getAttribute("data-next-index")) || 0;

    function numbered(fragment, index) {
      fragment.querySelectorAll("*").forEach(function (element) {
        Array.prototype.forEach.call(element.attributes, function (attribute) {
          if (attribute.value.indexOf("__i__") !== -1) {
            element.setAttribute(attribute.name, attribute.value.split("__i__").join(index));
          }
        });
      });
    }

    function addEntity() {
      var template = form.querySelector('template[data-entity-template="' + kindSelect.value + '"]');
      if (!template) return;
      var fragment = template.content.cloneNode(true);
      numbered(fragment, String(next));
      next += 1;
      var row = fragment.querySelector("[data-entity]");
      list.appendChild(fragment);
      var first = row.querySelector("input:not([type=hidden]), select");
      (first || row).focus();
      status.textContent = "Entité ajoutée : " + kindSelect.options[kindSelect.selectedIndex].text + ".";
    }

    form.addEventListener("click", function (event) {
      var button = event.target.closest("button[name=action]");
      if (!button) return;
      if (button.hasAttribute("data-add-entity")) {
        event.preventDefault();
        addEntity();
      } else if (button.hasAttribute("data-remove-entity")) {
        event.preventDefault();
        button.closest("[data-entity]").remove();
        kindSelect.focus();
        status.textContent = "Entité retirée.";
      }
    });

    var note = form.querySelector("[data-handling-note]");
    var codes = form.querySelectorAll("input[name=handling_code]");
    function showNote() {
      var chosen = form.querySelector("input[name=handling_code]:checked");
      note.hidden = !(chosen && chosen.value === "H3");
    }
    codes.forEach(function (radio) {
      radio.addEventListener("change", showNote);
    });
    showNote();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.querySelector("[data-events]");
    if (panel) liveNotifications(panel);
    var recordFormElement = document.querySelector("[data-record-form]");
    if (recordFormElement) recordForm(recordFormElement);
  });
})();
