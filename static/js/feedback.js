/* Feedback samples and the dataset builder (pipelines/datasets/views.py).
 *
 * Samples page: one card is "current". Its buttons carry data-fb-key="a" (etc.); this script copies
 * those to data-key on the current card only, so static/js/shortcuts.js drives exactly that card
 * (and its help overlay lists the keys). j/k (buttons with data-fb-move) move the current card;
 * after htmx swaps a decided card in, the next pending card becomes current. Opening "编辑回答"
 * focuses its textarea. Error responses (409 version conflict, 400, 403) carry the card with the
 * message, so they are swapped in too.
 *
 * Builder page: fieldsets marked data-fb-source="logs combined" show only for those sources.
 */
(function () {
  "use strict";

  function cards() { return Array.prototype.slice.call(document.querySelectorAll("[data-fb-card]")); }

  function activate(card, scroll) {
    cards().forEach(function (c) {
      c.classList.remove("is-current");
      c.querySelectorAll("[data-fb-key]").forEach(function (el) { el.removeAttribute("data-key"); });
    });
    if (!card) return;
    card.classList.add("is-current");
    card.querySelectorAll("[data-fb-key]").forEach(function (el) {
      el.setAttribute("data-key", el.getAttribute("data-fb-key"));
    });
    if (scroll) card.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function current() { return document.querySelector("[data-fb-card].is-current"); }

  function firstPending(after) {
    var all = cards();
    var start = after ? all.indexOf(after) + 1 : 0;
    for (var i = start; i < all.length; i++) {
      if (all[i].getAttribute("data-fb-pending") === "1") return all[i];
    }
    return null;
  }

  function move(step) {
    var all = cards();
    if (!all.length) return;
    var index = all.indexOf(current());
    var next = all[Math.min(Math.max(index + step, 0), all.length - 1)];
    activate(next, true);
  }

  document.addEventListener("click", function (event) {
    var mover = event.target.closest("[data-fb-move]");
    if (mover) { move(parseInt(mover.getAttribute("data-fb-move"), 10)); return; }
    var card = event.target.closest("[data-fb-card]");
    if (card && card !== current()) activate(card, false);
  });

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (details.matches && details.matches("[data-fb-edit]") && details.open) {
      var area = details.querySelector("textarea");
      if (area) { area.focus(); area.setSelectionRange(area.value.length, area.value.length); }
    }
  }, true);

  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr && event.detail.xhr.status;
    var target = event.detail.target;
    if ((status === 400 || status === 403 || status === 409) && target &&
        (target.matches("[data-fb-card]") || target.id === "builder-result")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var swapped = document.getElementById(event.detail.target && event.detail.target.id) || null;
    if (!cards().length) return;
    if (swapped && swapped.matches("[data-fb-card]")) {
      // A decided card hands the keys to the next pending one; an error keeps them here.
      var stay = swapped.getAttribute("data-fb-pending") === "1";
      activate(stay ? swapped : (firstPending(swapped) || swapped), !stay);
    } else {
      activate(firstPending(null) || cards()[0], false);
    }
  });

  function syncSources() {
    var form = document.getElementById("builder-form");
    if (!form) return;
    var checked = form.querySelector("input[name=source]:checked");
    var source = checked ? checked.value : "logs";
    form.querySelectorAll("[data-fb-source]").forEach(function (group) {
      group.hidden = group.getAttribute("data-fb-source").split(" ").indexOf(source) === -1;
    });
  }

  document.addEventListener("change", function (event) {
    if (event.target.name === "source") syncSources();
  });

  function init() {
    if (cards().length) activate(firstPending(null) || cards()[0], false);
    syncSources();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
