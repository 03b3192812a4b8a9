/* Keyboard shortcuts for every review page, declared in the markup:
 *
 *   <button data-key="Enter" data-key-help="正确，保留并下一条">…</button>
 *   <a href="…" data-key="j" data-key-help="下一条">…</a>
 *   <input type="radio" data-key="1" data-key-help="原因 (1)">
 *
 * Pressing the key clicks (or focuses, for text fields) the element; a text field marked
 * `data-key-select` also gets its text selected. Shortcuts act only when no text field has the
 * focus: while the user types, keys are the field's, except Escape (leaves the field) and
 * Ctrl/⌘+Enter (submits). While the page is busy (`data-busy` on <body>, set while a swap of the
 * page region is in flight) shortcut keys are ignored, so a key pressed early never acts on the
 * page that is being replaced. "?" toggles a help overlay built from the same attributes, so the
 * help can never drift from the bindings. Content swapped in by htmx is picked up because lookup
 * happens on each key press.
 */
(function () {
  "use strict";

  function isTyping(target) {
    if (!target) return false;
    var tag = target.tagName;
    return target.isContentEditable || tag === "TEXTAREA" || tag === "SELECT" ||
      (tag === "INPUT" && !/^(checkbox|radio|button|submit)$/i.test(target.type));
  }

  function bindings() {
    return Array.prototype.filter.call(document.querySelectorAll("[data-key]"), function (el) {
      return !el.disabled && el.offsetParent !== null;
    });
  }

  function findBinding(key) {
    var all = bindings();
    for (var i = 0; i < all.length; i++) {
      if (all[i].getAttribute("data-key").split(" ").indexOf(key) !== -1) return all[i];
    }
    return null;
  }

  function helpOverlay() {
    var overlay = document.getElementById("shortcut-help");
    if (overlay) return overlay;
    overlay = document.createElement("div");
    overlay.id = "shortcut-help";
    overlay.className = "shortcut-help";
    overlay.hidden = true;
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-label", "键盘快捷键");
    document.body.appendChild(overlay);
    overlay.addEventListener("click", function () { overlay.hidden = true; });
    return overlay;
  }

  function toggleHelp() {
    var overlay = helpOverlay();
    if (!overlay.hidden) { overlay.hidden = true; return; }
    overlay.textContent = "";
    var box = document.createElement("div");
    box.className = "shortcut-help-box";
    var title = document.createElement("h2");
    title.textContent = "键盘快捷键";
    box.appendChild(title);
    var table = document.createElement("table");
    var seen = {};
    bindings().forEach(function (el) {
      var keys = el.getAttribute("data-key");
      if (seen[keys]) return;
      seen[keys] = true;
      var row = table.insertRow();
      var k = row.insertCell();
      keys.split(" ").forEach(function (key) {
        var kbd = document.createElement("kbd");
        kbd.textContent = key;
        k.appendChild(kbd);
        k.appendChild(document.createTextNode(" "));
      });
      row.insertCell().textContent = el.getAttribute("data-key-help") || el.textContent.trim();
    });
    var row = table.insertRow();
    row.insertCell().innerHTML = "<kbd>?</kbd>";
    row.insertCell().textContent = "显示 / 隐藏本帮助";
    box.appendChild(table);
    overlay.appendChild(box);
    overlay.hidden = false;
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.defaultPrevented) return;
    if (isTyping(target)) {
      if (event.key === "Escape") { target.blur(); event.preventDefault(); }
      else if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form) {
        event.preventDefault();
        if (!document.body.hasAttribute("data-busy")) target.form.requestSubmit();
      }
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (document.body.hasAttribute("data-busy")) { event.preventDefault(); return; }
    if (event.key === "?") { toggleHelp(); event.preventDefault(); return; }
    if (event.key === "Escape") { helpOverlay().hidden = true; return; }
    var el = findBinding(event.key);
    if (!el) return;
    event.preventDefault();
    if (isTyping(el)) {
      el.focus();
      if (el.hasAttribute("data-key-select") && el.select) el.select();
    } else {
      el.click();
    }
  });
})();
