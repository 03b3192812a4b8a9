/* DPO pages (templates/pipelines/dpo_*.html), configured through data-* attributes:
 *
 *   <select data-dpo-toggle="source">          a control whose value shows/hides parts of the form
 *   <div data-dpo-show="source" data-dpo-when="file classification">   shown only for those values
 *   <button data-dpo-edit-toggle>               switches the review page between reading and editing
 *   [data-dpo-view] / [data-dpo-edit]           what reading / editing shows
 *   <section id="preview" data-dpo-ready>       a preview with pairs enables [data-dpo-start]
 *   <div id="pair-page" data-title="…">           the review page's swap target: a decision (y / s / d)
 *                                                 swaps in the next pair; its title follows
 *
 * Refusals (409 someone saved first, 400, 403) come back as the pair page with the message: they are
 * swapped in like a success, so the reviewer sees why and loses nothing.
 */
(function () {
  "use strict";

  function currentValue(name) {
    var controls = document.querySelectorAll('[data-dpo-toggle="' + name + '"]');
    for (var i = 0; i < controls.length; i++) {
      var el = controls[i];
      if (el.type === "radio") { if (el.checked) return el.value; } else { return el.value; }
    }
    return "";
  }

  function applyToggles() {
    document.querySelectorAll("[data-dpo-show]").forEach(function (el) {
      var name = el.getAttribute("data-dpo-show");
      var wanted = el.getAttribute("data-dpo-when").split(" ");
      var show = wanted.indexOf(currentValue(name)) !== -1;
      el.hidden = !show;
      // Hidden fields are not sent, so a stale value of another source or strategy never leaks in.
      el.querySelectorAll("input, select, textarea").forEach(function (field) { field.disabled = !show; });
    });
  }

  function updateStart() {
    var preview = document.getElementById("preview");
    var ready = preview && preview.hasAttribute("data-dpo-ready");
    document.querySelectorAll("[data-dpo-start]").forEach(function (button) {
      button.disabled = !ready;
      button.title = ready ? "" : "请先预览";
    });
  }

  function toggleEdit(root) {
    var editing = false;
    root.querySelectorAll("[data-dpo-edit]").forEach(function (el) { el.hidden = !el.hidden; editing = !el.hidden; });
    root.querySelectorAll("[data-dpo-view]").forEach(function (el) { el.hidden = editing; });
    if (editing) {
      var first = root.querySelector("textarea[data-dpo-edit]");
      if (first) first.focus();
    }
  }

  document.addEventListener("change", function (event) {
    if (event.target.closest("[data-dpo-toggle]")) applyToggles();
    // Changing the form after a preview means the preview no longer shows what would run.
    if (event.target.closest("#dpo-form")) {
      var preview = document.getElementById("preview");
      if (preview) preview.removeAttribute("data-dpo-ready");
      updateStart();
    }
  });
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-dpo-edit-toggle]");
    if (toggle) toggleEdit(toggle.closest("section") || document);
  });
  document.addEventListener("htmx:afterSwap", updateStart);
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var target = event.detail.target;
    if ((status === 400 || status === 403 || status === 409) && target && target.id === "pair-page") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:load", function (event) {
    var page = event.detail.elt.closest && event.detail.elt.closest("[data-title]");
    if (page && page.id === "pair-page") document.title = page.getAttribute("data-title");
  });
  document.addEventListener("DOMContentLoaded", function () { applyToggles(); updateStart(); });
})();
