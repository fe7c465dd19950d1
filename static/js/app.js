// Mini-PBX's few lines of behaviour on top of htmx: a <dialog> to confirm, a dialog panel for forms, the
// "/" key to search, copy buttons for secrets shown once, and a toast when a request fails.
(function () {
  "use strict";

  // Confirmations ask in our own dialog, naming the object, instead of the browser's window.confirm.
  function ask(question, label, onYes) {
    const dialog = document.getElementById("confirm-dialog");
    dialog.querySelector("#confirm-question").textContent = question;
    dialog.querySelector("[data-answer=yes]").textContent = label || "Delete";
    dialog.onclick = function (click) {
      const answer = click.target.dataset && click.target.dataset.answer;
      if (!answer) return;
      dialog.close();
      if (answer === "yes") onYes();
    };
    dialog.showModal();
    dialog.querySelector("[data-answer=no]").focus();
  }
  document.addEventListener("htmx:confirm", function (event) {
    if (!event.detail.question) return;
    event.preventDefault();
    ask(event.detail.question, event.detail.elt.dataset.confirmLabel, function () { event.detail.issueRequest(true); });
  });
  // A link that downloads something sensitive (a file is no htmx request) asks the same way.
  document.addEventListener("click", function (event) {
    const link = event.target.closest("a[data-confirm]");
    if (!link) return;
    event.preventDefault();
    ask(link.dataset.confirm, link.dataset.confirmLabel, function () { window.location.href = link.href; });
  });

  // Forms open in the panel dialog: whatever htmx swaps into #panel-body shows it; the server closes it
  // with the trigger "closePanel" (after the swap) once a save succeeded.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "panel-body" && event.detail.target.children.length) {
      const panel = document.getElementById("panel");
      if (!panel.open) panel.showModal();
      const bad = panel.querySelector("[aria-invalid=true]");
      // htmx focuses a form's [autofocus] field as it settles, after this: the first bad field keeps the focus.
      if (bad) panel.querySelectorAll("[autofocus]").forEach(function (field) { field.removeAttribute("autofocus"); });
      const first = bad || panel.querySelector("[autofocus]") || panel.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
    }
  });
  document.addEventListener("closePanel", function () {
    const panel = document.getElementById("panel");
    if (panel.open) panel.close();
  });
  document.addEventListener("click", function (event) {
    if (event.target.matches("[data-close-panel]")) document.getElementById("panel").close();
  });

  // "/" focuses the page's search box, as in most admin tools.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    const active = document.activeElement;
    if (active && (active.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName))) return;
    const search = document.querySelector("input[type=search]");
    if (search) { event.preventDefault(); search.focus(); search.select(); }
  });

  // Copy a secret shown once.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const field = document.getElementById(button.dataset.copy);
    field.select();
    const done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 2000); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
    else { document.execCommand("copy"); done(); }
  });

  // On a phone the navigation folds behind a Menu button, and the call log's filters behind More filters.
  document.addEventListener("click", function (event) {
    const toggle = event.target.closest(".menu-toggle, .filters-toggle");
    if (!toggle) return;
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    if (toggle.matches(".menu-toggle")) toggle.closest("nav").classList.toggle("nav-open", open);
    else document.getElementById(toggle.getAttribute("aria-controls")).classList.toggle("open", open);
  });

  // A printable page's Print button.
  document.addEventListener("click", function (event) {
    if (event.target.matches("[data-print]")) window.print();
  });

  // A call in the call log opens into its legs, in the row below it.
  document.addEventListener("click", function (event) {
    const toggle = event.target.closest(".legs-toggle");
    if (!toggle) return;
    const legs = document.getElementById(toggle.getAttribute("aria-controls"));
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    legs.hidden = !open;
    // The legs are fetched the first time the call opens (hx-trigger="open-legs once").
    if (open) htmx.trigger(legs.querySelector("[hx-get]"), "open-legs");
  });

  // Waiting callers: the wait ticks here, every second, from the time they joined (no push per second);
  // past the warning threshold the row turns amber, past twice that red.
  function tick() {
    const list = document.getElementById("waiting-calls");
    if (!list) return;
    const warn = Number(list.dataset.warn || 60);
    list.querySelectorAll("[data-joined]").forEach(function (row) {
      const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(row.dataset.joined)) / 1000));
      const minutes = Math.floor(seconds / 60);
      row.querySelector(".wait").textContent = minutes + ":" + String(seconds % 60).padStart(2, "0");
      row.classList.toggle("long", seconds >= warn && seconds < 2 * warn);
      row.classList.toggle("too-long", seconds >= 2 * warn);
    });
    // Longest wait first, as the queue itself serves them.
    const ul = list.querySelector(".waiting-list");
    if (ul) Array.from(ul.children).sort(function (a, b) { return Date.parse(a.dataset.joined) - Date.parse(b.dataset.joined); })
      .forEach(function (li) { if (ul.lastElementChild !== li) ul.appendChild(li); });
  }
  // A pause's minutes count on from when Asterisk paused the member.
  function tickPauses() {
    document.querySelectorAll("[data-paused-since]").forEach(function (el) {
      const minutes = Math.max(0, Math.floor((Date.now() - Date.parse(el.dataset.pausedSince)) / 60000));
      el.textContent = minutes < 60 ? minutes + " min" : Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0") + " min";
    });
  }
  setInterval(tickPauses, 15000);
  // No "Call" on your own card.
  function hideOwnCall() {
    const own = document.body.dataset.ownExtension;
    if (!own) return;
    document.querySelectorAll('.ext-card[data-number="' + own + '"] .call-button').forEach(function (b) { b.remove(); });
  }
  setInterval(tick, 1000);
  document.addEventListener("htmx:wsAfterMessage", function () { tick(); hideOwnCall(); tickPauses(); });
  document.addEventListener("DOMContentLoaded", function () { tick(); hideOwnCall(); tickPauses(); });
  document.addEventListener("htmx:afterSwap", function () { hideOwnCall(); tickPauses(); });  // another page of the grid

  // A failed request says so where the person is looking, with the server's own words.
  function toast(message) {
    const box = document.createElement("p");
    box.className = "toast";
    box.setAttribute("role", "alert");
    box.textContent = message;
    document.getElementById("toasts").appendChild(box);
    setTimeout(function () { box.remove(); }, 6000);
  }
  document.addEventListener("htmx:responseError", function (event) {
    const xhr = event.detail.xhr;
    let message = "Something went wrong (" + xhr.status + ").";
    try {
      const body = JSON.parse(xhr.responseText);
      message = Object.values(body.errors).join(" ");
    } catch (ignored) {
      const text = new DOMParser().parseFromString(xhr.responseText, "text/html").querySelector("[role=alert]");
      if (text) message = text.textContent;
    }
    toast(message);
  });
  document.addEventListener("htmx:sendError", function () { toast("The server did not answer. Check the connection and try again."); });
})();
