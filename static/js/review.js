/* Review pages: image zoom, the mode-3 character counter with its length warning, "restore the
 * model's output", cause (2) ticking "label error", the focus after each swap (never in a text
 * field), "keep" refused where it would keep nothing or drop an edit, accepting a drafted
 * correction into the edit box, the suggested-class field,
 * drafts of unsaved input, the help button, and letting htmx swap 400/403/409 responses (they
 * carry the re-rendered sample page with the error message).
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
        // as if typed: the counter, the live check and the draft follow
        textarea.dispatchEvent(new Event("input", { bubbles: true }));
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

  // ------------------------------------------------------------------ focus and busy state
  // After a save or a navigation the new sample must not open with the focus in a text field
  // (htmx re-focuses an element with the same id): the next shortcut would be typed into the
  // training text. While such a swap is in flight the page is busy and shortcuts wait.
  function swapsSamplePage(detail) {
    var target = detail && detail.target;
    return !!(target && target.id === "sample-page");
  }

  function focusPage() {
    var page = document.getElementById("sample-page");
    var active = document.activeElement;
    if (active && active !== document.body && page && page.contains(active) && active.blur) active.blur();
    if (page) page.focus({ preventScroll: true });
  }

  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (!swapsSamplePage(event.detail)) return;
    document.body.setAttribute("data-busy", "");
    var active = document.activeElement;
    if (active && active.blur && active !== document.body) active.blur();
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (!swapsSamplePage(event.detail)) return;
    var saved = event.detail.xhr && event.detail.xhr.getResponseHeader("X-Saved-Sample");
    if (saved && event.detail.successful) dropDraft("datafix-draft-" + saved);
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (!swapsSamplePage(event.detail)) return;
    focusPage();
  });
  document.body.addEventListener("htmx:afterSettle", function (event) {
    if (!swapsSamplePage(event.detail)) return;
    focusPage();
    document.body.removeAttribute("data-busy");
  });
  ["htmx:sendError", "htmx:responseError", "htmx:swapError", "htmx:timeout", "htmx:abort"].forEach(function (name) {
    document.body.addEventListener(name, function () { document.body.removeAttribute("data-busy"); });
  });

  // ------------------------------------------------------------------ "keep" only keeps what is keepable
  function blockKeep(form, message) {
    var box = form.querySelector(".keep-blocked");
    if (box) { box.textContent = message; box.hidden = false; }
  }

  document.addEventListener("click", function (event) {
    var keep = event.target.closest && event.target.closest("[data-keep]");
    if (!keep || !keep.form) return;
    var message = keep.getAttribute("data-keep-blocked");
    var textarea = keep.form.querySelector("textarea[data-original]");
    if (!message && textarea && textarea.value.trim() !== textarea.getAttribute("data-original").trim()) {
      message = "你修改了模式3输出：按 Enter 保存修改，或按 r 恢复为模型原输出后再按 y。";
    }
    if (message) {
      event.preventDefault();
      event.stopPropagation();
      blockKeep(keep.form, message);
    }
  }, true);

  // ------------------------------------------------------------------ drafted corrections
  // `a` puts the model's drafted correction into the edit box as if typed (the counter, the live
  // check and the unsaved-input draft follow) and records which draft it was, so the save says the
  // correction came from it. The focus stays where it was: the next key is a shortcut (Enter saves).
  document.addEventListener("click", function (event) {
    var accept = event.target.closest && event.target.closest("[data-draft-accept]");
    if (!accept) return;
    var form = document.getElementById("review-form");
    var textarea = form && form.querySelector("textarea[data-original]");
    if (!textarea) return;
    textarea.value = accept.getAttribute("data-draft-text");
    var field = form.querySelector('input[name="correction_draft"]');
    if (field) field.value = accept.getAttribute("data-draft-id");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    var said = accept.parentNode.querySelector(".draft-accepted");
    if (said) said.hidden = false;
    var blocked = form.querySelector(".keep-blocked");
    if (blocked) blocked.hidden = true;
  });

  // ------------------------------------------------------------------ suggested class
  // Enter in the suggestion field accepts it (the browser's list picks the option) instead of
  // submitting the form; choosing a label error moves there so the class can be typed at once.
  document.addEventListener("keydown", function (event) {
    var field = event.target.closest && event.target.closest("[data-suggestion]");
    if (field && event.key === "Enter" && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      field.blur();
    }
  }, true);

  function focusSuggestion(form) {
    var field = form.querySelector("[data-suggestion]");
    if (!field) return;
    field.focus();
    field.select();
  }

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (!el.form || !el.matches) return;
    if ((el.matches('input[name="label_error"]') && el.checked) ||
        (el.matches('input[type="radio"][data-implies]') && el.checked)) {
      focusSuggestion(el.form);
    }
  });

  // ------------------------------------------------------------------ drafts
  // Unsaved input (cause, correction, flag, suggestion, note) is kept per sample in localStorage
  // as the reviewer types; j/k/u or closing the tab lose nothing: the page restores the draft
  // (with the version the reviewer saw, so a save still detects someone else's change) and says so.
  // A successful save of the sample drops its draft.
  var DRAFT_FIELDS = ["cause", "corrected_output", "correction_override", "label_error", "suggested_label_name", "note",
    "correction_draft"];
  var DRAFT_CHECKBOXES = ["correction_override", "label_error"];

  function formState(form) {
    var state = {};
    DRAFT_FIELDS.forEach(function (name) {
      var els = form.querySelectorAll('[name="' + name + '"]');
      if (!els.length) { state[name] = DRAFT_CHECKBOXES.indexOf(name) === -1 ? "" : false; return; }
      var first = els[0];
      if (first.type === "radio") {
        var checked = form.querySelector('[name="' + name + '"]:checked');
        state[name] = checked ? checked.value : "";
      } else if (first.type === "checkbox") {
        state[name] = first.checked;
      } else {
        state[name] = first.value;
      }
    });
    var version = form.querySelector('[name="version"]');
    state.version = version ? version.value : "";
    return state;
  }

  function applyState(form, state) {
    DRAFT_FIELDS.forEach(function (name) {
      if (!(name in state)) return;
      var els = form.querySelectorAll('[name="' + name + '"]');
      els.forEach(function (el) {
        if (el.type === "radio") el.checked = el.value === state[name];
        else if (el.type === "checkbox") el.checked = !!state[name];
        else el.value = state[name];
      });
    });
    var version = form.querySelector('[name="version"]');
    if (version && state.version !== undefined) version.value = state.version;
    syncImpliedChecks(form);
    var textarea = form.querySelector("textarea[data-char-limit]");
    if (textarea) updateCounter(textarea);
  }

  function sameState(a, b) {
    return DRAFT_FIELDS.every(function (name) { return a[name] === b[name]; });
  }

  function readDraft(key) {
    try { return JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { return null; }
  }

  function dropDraft(key) {
    try { window.localStorage.removeItem(key); } catch (e) { /* storage unavailable: nothing kept */ }
  }

  var initialStates = new WeakMap();

  function initDraft(root) {
    var form = (root || document).querySelector && (root || document).querySelector("form[data-draft-key]");
    if (!form || initialStates.has(form)) return;
    var initial = formState(form);
    initialStates.set(form, initial);
    var draft = readDraft(form.getAttribute("data-draft-key"));
    if (draft && !sameState(draft, initial)) {
      applyState(form, draft);
      var notice = form.querySelector(".draft-restored");
      if (notice) notice.hidden = false;
    }
  }

  function saveDraft(form) {
    var key = form.getAttribute("data-draft-key");
    var initial = initialStates.get(form);
    var state = formState(form);
    try {
      if (initial && sameState(state, initial)) window.localStorage.removeItem(key);
      else window.localStorage.setItem(key, JSON.stringify(state));
    } catch (e) { /* storage unavailable: the reviewer keeps the page open */ }
  }

  ["input", "change"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var form = event.target.form;
      if (form && form.hasAttribute("data-draft-key")) saveDraft(form);
    });
  });

  document.addEventListener("click", function (event) {
    var discard = event.target.closest && event.target.closest("[data-draft-discard]");
    if (!discard || !discard.form) return;
    var form = discard.form;
    dropDraft(form.getAttribute("data-draft-key"));
    var initial = initialStates.get(form);
    if (initial) applyState(form, initial);
    var notice = form.querySelector(".draft-restored");
    if (notice) notice.hidden = true;
  });

  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 400 || status === 403 || status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // The next sample's image is fetched while the reviewer looks at this one: after a save it is
  // already in the browser's cache.
  function preloadNext(root) {
    var page = root && root.querySelector ? (root.id === "sample-page" ? root : root.querySelector("#sample-page")) : null;
    var url = page && page.getAttribute("data-next-image");
    if (url) new Image().src = url;
  }

  document.body.addEventListener("htmx:load", function (event) {
    preloadNext(event.detail.elt);
    initCounters(event.detail.elt);
    initImpliedChecks(event.detail.elt);
    initDraft(event.detail.elt);
    // The sample region carries its page title, so the tab follows htmx navigation.
    var page = event.detail.elt.closest && event.detail.elt.closest("[data-title]");
    if (page) document.title = page.getAttribute("data-title");
  });
  initCounters(document);
  initImpliedChecks(document);
  initDraft(document);
  preloadNext(document.body);
})();
