/* Review pages: image zoom, the mode-3 character counter with its 100-character warning,
 * "restore the model's output", cause (2) ticking "label error", the help button, and letting
 * htmx swap 400/403/409 responses (they carry the re-rendered sample page with the error message).
 * Configured through data-* attributes; no inline scripts (CSP). Works after htmx swaps because
 * everything is delegated from `document` or re-run on `htmx:load`.
 */
(function () {
  "use strict";

  // The team's 字数: characters excluding whitespace (review/parsing.py text_length).
  function countChars(text) {
    return text.replace(/\s/g, "").length;
  }

  function updateCounter(textarea) {
    var limit = parseInt(textarea.getAttribute("data-char-limit"), 10);
    var n = countChars(textarea.value);
    var counter = document.querySelector('[data-counter-for="' + textarea.id + '"]');
    if (counter) {
      counter.textContent = n + " / " + limit + " 字";
      counter.classList.toggle("over", n > limit);
    }
    var form = textarea.form;
    var warning = form && form.querySelector(".limit-warning");
    if (warning) warning.hidden = !(n > limit);
    textarea.classList.toggle("over-limit", n > limit);
  }

  function initCounters(root) {
    (root || document).querySelectorAll("textarea[data-char-limit]").forEach(updateCounter);
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("textarea[data-char-limit]")) updateCounter(event.target);
  });

  // A choice that implies a checkbox (cause (2) "label wrong" implies "label error") ticks it and
  // locks it while chosen, and gives back the reviewer's own setting when another choice is made;
  // the server applies the same rule (review_save).
  function syncImpliedChecks(form) {
    var implied = {};
    form.querySelectorAll("input[data-implies]").forEach(function (choice) {
      var name = choice.getAttribute("data-implies");
      implied[name] = implied[name] || choice.checked;
    });
    Object.keys(implied).forEach(function (name) {
      var box = form.querySelector('input[type="checkbox"][name="' + name + '"]');
      if (!box) return;
      if (implied[name] && !box.disabled) {
        box.setAttribute("data-own-setting", box.checked ? "1" : "0");
        box.checked = true;
        box.disabled = true;
      } else if (!implied[name] && box.disabled) {
        box.disabled = false;
        if (box.hasAttribute("data-own-setting")) box.checked = box.getAttribute("data-own-setting") === "1";
        box.removeAttribute("data-own-setting");
      }
    });
  }

  function initImpliedChecks(root) {
    var forms = new Set();
    (root || document).querySelectorAll("input[data-implies]").forEach(function (choice) {
      if (choice.form) forms.add(choice.form);
    });
    forms.forEach(syncImpliedChecks);
  }

  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (form && event.target.matches && event.target.matches('input[type="radio"]') &&
        form.querySelector("input[data-implies]")) syncImpliedChecks(form);
  });

  function zoomOverlay() {
    var overlay = document.getElementById("image-zoom");
    if (overlay) return overlay;
    overlay = document.createElement("div");
    overlay.id = "image-zoom";
    overlay.className = "image-zoom";
    overlay.hidden = true;
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-label", "放大的图片");
    overlay.appendChild(document.createElement("img"));
    overlay.addEventListener("click", function () { overlay.hidden = true; });
    document.body.appendChild(overlay);
    return overlay;
  }

  document.addEventListener("click", function (event) {
    var zoom = event.target.closest && event.target.closest("[data-zoom]");
    if (zoom) {
      event.preventDefault();
      var overlay = zoomOverlay();
      if (!overlay.hidden) { overlay.hidden = true; return; }
      overlay.querySelector("img").src = zoom.getAttribute("href");
      overlay.hidden = false;
      return;
    }
    var reset = event.target.closest && event.target.closest("[data-reset-output]");
    if (reset) {
      var textarea = reset.form && reset.form.querySelector("textarea[data-original]");
      if (textarea) {
        textarea.value = textarea.getAttribute("data-original");
        updateCounter(textarea);
      }
      return;
    }
    var help = event.target.closest && event.target.closest("[data-help-toggle]");
    if (help) {
      document.dispatchEvent(new KeyboardEvent("keydown", { key: "?", bubbles: true }));
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var overlay = document.getElementById("image-zoom");
      if (overlay) overlay.hidden = true;
    }
  });

  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 400 || status === 403 || status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.body.addEventListener("htmx:load", function (event) {
    initCounters(event.detail.elt);
    initImpliedChecks(event.detail.elt);
    // The sample region carries its page title, so the tab follows htmx navigation.
    var page = event.detail.elt.closest && event.detail.elt.closest("[data-title]");
    if (page) document.title = page.getAttribute("data-title");
  });
  initCounters(document);
  initImpliedChecks(document);
})();
