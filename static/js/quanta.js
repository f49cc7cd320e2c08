/*
 * Quanta console behaviour. Plain JavaScript, no framework, no inline handlers: everything is
 * wired through data attributes with delegated listeners, so content swapped in by htmx works
 * without re-initialisation.
 *
 *   data-theme-toggle            switch between light and dark (persisted by theme.js)
 *   data-nav-toggle              open/close the off-canvas sidebar on phones
 *   data-nav-close               close it (scrim, close button)
 *   data-menu-button             a button controlling a role="menu" element (aria-controls)
 *   data-open-dialog="ID"        open <dialog id="ID"> as a modal
 *   data-close-dialog            close the enclosing <dialog>
 *   dialog[data-open-on-load]    a dialog shown as soon as the page loads (e.g. a form with errors)
 *   data-copy="SELECTOR"         copy the text of SELECTOR (or data-copy-text) to the clipboard
 *   data-confirm="MESSAGE"       ask before submitting the form (or following the link)
 *   .toast[data-timeout="MS"]    auto-dismissed toast; data-dismiss-toast closes one
 *   [data-tabs] [role="tab"]     tabs (aria-controls names the panel), arrow keys move between them
 *   (the console websocket lives in realtime.js; its "notify" messages use Quanta.toast)
 */
(function () {
  "use strict";

  var doc = document;
  var MOBILE_QUERY = window.matchMedia("(max-width: 767.98px)");

  /* Utilities ------------------------------------------------------------------------------- */

  function closestAttr(target, attr) {
    return target && target.closest ? target.closest("[" + attr + "]") : null;
  }

  function focusables(container) {
    return Array.prototype.filter.call(
      container.querySelectorAll(
        'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])'
      ),
      function (el) {
        return el.offsetParent !== null || el === doc.activeElement;
      }
    );
  }

  var liveRegion = null;
  function announce(text) {
    if (!liveRegion) {
      liveRegion = doc.createElement("div");
      liveRegion.className = "visually-hidden";
      liveRegion.setAttribute("role", "status");
      liveRegion.setAttribute("aria-live", "polite");
      doc.body.appendChild(liveRegion);
    }
    liveRegion.textContent = "";
    window.setTimeout(function () {
      liveRegion.textContent = text;
    }, 50);
  }

  /* Theme ------------------------------------------------------------------------------------ */

  function toggleTheme() {
    if (window.QuantaTheme) {
      window.QuantaTheme.toggle();
      var theme = window.QuantaTheme.current();
      announce(theme === "dark" ? "Dark theme on" : "Light theme on");
    }
  }

  /* Sidebar drawer (phones) ------------------------------------------------------------------ */

  var navToggle = null;

  function sidebar() {
    return doc.getElementById("sidebar");
  }

  function mainColumn() {
    return doc.querySelector("[data-main-column]");
  }

  function setNavOpen(open, restoreFocus) {
    var side = sidebar();
    if (!side) {
      return;
    }
    doc.body.classList.toggle("nav-open", open);
    doc.querySelectorAll("[data-nav-toggle]").forEach(function (btn) {
      btn.setAttribute("aria-expanded", open ? "true" : "false");
    });
    var main = mainColumn();
    if (main) {
      main.inert = open;
    }
    if (open) {
      var current = side.querySelector('[aria-current="page"]') || focusables(side)[0];
      window.setTimeout(function () {
        (current || side).focus();
      }, 30);
    } else if (restoreFocus && navToggle) {
      navToggle.focus();
    }
  }

  function navIsOpen() {
    return doc.body.classList.contains("nav-open");
  }

  MOBILE_QUERY.addEventListener("change", function (event) {
    if (!event.matches && navIsOpen()) {
      setNavOpen(false, false);
    }
  });

  /* Menus ------------------------------------------------------------------------------------ */

  var openMenu = null;

  function menuItems(menu) {
    return Array.prototype.slice.call(menu.querySelectorAll('[role="menuitem"]:not([disabled])'));
  }

  function menuFor(button) {
    return doc.getElementById(button.getAttribute("aria-controls"));
  }

  function showMenu(button, focusIndex) {
    var menu = menuFor(button);
    if (!menu) {
      return;
    }
    if (openMenu && openMenu.button !== button) {
      hideMenu(false);
    }
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    openMenu = { button: button, menu: menu };
    var items = menuItems(menu);
    if (items.length) {
      var index = focusIndex < 0 ? items.length - 1 : focusIndex;
      items[Math.max(0, Math.min(index, items.length - 1))].focus();
    }
  }

  function hideMenu(restoreFocus) {
    if (!openMenu) {
      return;
    }
    openMenu.menu.hidden = true;
    openMenu.button.setAttribute("aria-expanded", "false");
    if (restoreFocus) {
      openMenu.button.focus();
    }
    openMenu = null;
  }

  function onMenuKeydown(event) {
    var items = menuItems(openMenu.menu);
    var index = items.indexOf(doc.activeElement);
    var next = null;
    switch (event.key) {
      case "ArrowDown":
        next = items[(index + 1) % items.length];
        break;
      case "ArrowUp":
        next = items[(index - 1 + items.length) % items.length];
        break;
      case "Home":
        next = items[0];
        break;
      case "End":
        next = items[items.length - 1];
        break;
      case "Escape":
        event.preventDefault();
        hideMenu(true);
        return;
      case "Tab":
        hideMenu(false);
        return;
      default:
        if (event.key.length === 1 && /\S/.test(event.key)) {
          var letter = event.key.toLowerCase();
          var ordered = items.slice(index + 1).concat(items.slice(0, index + 1));
          next =
            ordered.find(function (item) {
              return (item.innerText || item.textContent).trim().toLowerCase().indexOf(letter) === 0;
            }) || null;
        }
    }
    if (next) {
      event.preventDefault();
      next.focus();
    }
  }

  /* Dialogs ---------------------------------------------------------------------------------- */

  function openDialog(dialog, opener) {
    if (!dialog || typeof dialog.showModal !== "function") {
      return;
    }
    if (!dialog.open) {
      dialog.showModal();
    }
    dialog._opener = opener || doc.activeElement;
    var preferred =
      dialog.querySelector("[autofocus]") ||
      dialog.querySelector('[aria-invalid="true"]') ||
      dialog.querySelector("input:not([type=hidden]), select, textarea");
    if (preferred) {
      preferred.focus();
    }
  }

  function closeDialog(dialog) {
    if (dialog && dialog.open) {
      dialog.close();
    }
  }

  // Native modal dialogs trap focus and close on Escape; put focus back where it came from.
  doc.addEventListener(
    "close",
    function (event) {
      var dialog = event.target;
      if (dialog && dialog.tagName === "DIALOG" && dialog._opener && doc.contains(dialog._opener)) {
        dialog._opener.focus();
      }
    },
    true
  );

  // Close on a click on the backdrop (not on a drag that started inside the dialog).
  var pointerDownTarget = null;
  doc.addEventListener("pointerdown", function (event) {
    pointerDownTarget = event.target;
  });

  /* Clipboard -------------------------------------------------------------------------------- */

  function textToCopy(trigger) {
    if (trigger.hasAttribute("data-copy-text")) {
      return trigger.getAttribute("data-copy-text");
    }
    var target = doc.querySelector(trigger.getAttribute("data-copy"));
    if (!target) {
      return "";
    }
    if ("value" in target && typeof target.value === "string" && target.tagName !== "BUTTON") {
      return target.value;
    }
    var clone = target.cloneNode(true);
    clone.querySelectorAll(".prompt, [data-copy-ignore]").forEach(function (el) {
      el.remove();
    });
    return clone.textContent.replace(/\s+$/, "");
  }

  function fallbackCopy(text) {
    var area = doc.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    doc.body.appendChild(area);
    area.select();
    var ok = false;
    try {
      ok = doc.execCommand("copy");
    } catch (error) {
      ok = false;
    }
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  function copy(trigger) {
    var text = textToCopy(trigger);
    var write =
      navigator.clipboard && window.isSecureContext
        ? navigator.clipboard.writeText(text).catch(function () {
            return fallbackCopy(text);
          })
        : fallbackCopy(text);
    write.then(
      function () {
        trigger.classList.add("is-copied");
        announce("Copied to clipboard");
        window.clearTimeout(trigger._copyTimer);
        trigger._copyTimer = window.setTimeout(function () {
          trigger.classList.remove("is-copied");
        }, 1800);
      },
      function () {
        showToast("Could not copy. Select the text and copy it by hand.", "error");
      }
    );
  }

  /* Toasts ----------------------------------------------------------------------------------- */

  function toastContainer() {
    var container = doc.querySelector("[data-toasts]");
    if (!container) {
      container = doc.createElement("div");
      container.className = "toasts";
      container.setAttribute("data-toasts", "");
      container.setAttribute("aria-live", "polite");
      doc.body.appendChild(container);
    }
    return container;
  }

  function dismissToast(toast) {
    if (!toast || toast.classList.contains("is-leaving")) {
      return;
    }
    window.clearTimeout(toast._timer);
    toast.classList.add("is-leaving");
    window.setTimeout(function () {
      toast.remove();
    }, 200);
  }

  function scheduleToast(toast) {
    var timeout = parseInt(toast.getAttribute("data-timeout"), 10);
    if (!timeout) {
      return;
    }
    var start = function () {
      window.clearTimeout(toast._timer);
      toast._timer = window.setTimeout(function () {
        dismissToast(toast);
      }, timeout);
    };
    var stop = function () {
      window.clearTimeout(toast._timer);
    };
    toast.addEventListener("mouseenter", stop);
    toast.addEventListener("mouseleave", start);
    toast.addEventListener("focusin", stop);
    toast.addEventListener("focusout", start);
    start();
  }

  var ICONS = { success: "check", error: "alert", warning: "alert", info: "info" };

  function iconSprite() {
    var meta = doc.querySelector('meta[name="quanta-icons"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function svgIcon(name, className) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = doc.createElementNS(ns, "svg");
    svg.setAttribute("class", "icon" + (className ? " " + className : ""));
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var use = doc.createElementNS(ns, "use");
    use.setAttribute("href", iconSprite() + "#" + name);
    svg.appendChild(use);
    return svg;
  }

  function showToast(message, level) {
    level = ICONS[level] ? level : "info";
    var toast = doc.createElement("div");
    toast.className = "toast toast-" + level;
    toast.setAttribute("role", level === "error" ? "alert" : "status");
    toast.setAttribute("data-timeout", level === "error" ? "10000" : "6000");
    toast.appendChild(svgIcon(ICONS[level]));
    var body = doc.createElement("div");
    body.className = "toast-body";
    body.textContent = message;
    toast.appendChild(body);
    var close = doc.createElement("button");
    close.type = "button";
    close.className = "btn btn-ghost btn-icon btn-sm toast-close";
    close.setAttribute("data-dismiss-toast", "");
    close.setAttribute("aria-label", "Dismiss");
    close.appendChild(svgIcon("x"));
    toast.appendChild(close);
    toastContainer().appendChild(toast);
    scheduleToast(toast);
    return toast;
  }

  /* Tabs ------------------------------------------------------------------------------------ */

  function selectTab(tab, focus) {
    var list = tab.closest('[role="tablist"]');
    list.querySelectorAll('[role="tab"]').forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.tabIndex = selected ? 0 : -1;
      var panel = doc.getElementById(other.getAttribute("aria-controls"));
      if (panel) {
        panel.hidden = !selected;
      }
    });
    if (focus) {
      tab.focus();
    }
  }

  function onTabKeydown(event, tab) {
    var tabs = Array.prototype.slice.call(tab.closest('[role="tablist"]').querySelectorAll('[role="tab"]'));
    var index = tabs.indexOf(tab);
    var next = null;
    if (event.key === "ArrowRight") {
      next = tabs[(index + 1) % tabs.length];
    } else if (event.key === "ArrowLeft") {
      next = tabs[(index - 1 + tabs.length) % tabs.length];
    } else if (event.key === "Home") {
      next = tabs[0];
    } else if (event.key === "End") {
      next = tabs[tabs.length - 1];
    }
    if (next) {
      event.preventDefault();
      selectTab(next, true);
    }
  }

  /* Initialisation of server-rendered content (page load and htmx swaps) ------------------- */

  function init(root) {
    root = root || doc;
    // After a failed submission, put the cursor in the first field with an error.
    var invalid = root.querySelector('[aria-invalid="true"]');
    if (invalid && !invalid.closest("dialog")) {
      invalid.focus();
    }
    root.querySelectorAll(".toast[data-timeout]").forEach(function (toast) {
      if (!toast._scheduled) {
        toast._scheduled = true;
        scheduleToast(toast);
      }
    });
    var dialogs = root.querySelectorAll("dialog[data-open-on-load]");
    if (root.matches && root.matches("dialog[data-open-on-load]")) {
      dialogs = [root];
    }
    Array.prototype.forEach.call(dialogs, function (dialog) {
      dialog.removeAttribute("data-open-on-load");
      openDialog(dialog, doc.querySelector('[data-open-dialog="' + dialog.id + '"]'));
    });
  }

  /* Delegated listeners --------------------------------------------------------------------- */

  doc.addEventListener("click", function (event) {
    var target = event.target;
    var el;

    if ((el = closestAttr(target, "data-menu-button"))) {
      event.preventDefault();
      if (openMenu && openMenu.button === el) {
        hideMenu(false);
      } else {
        showMenu(el, 0);
      }
      return;
    }

    if (openMenu && !openMenu.menu.contains(target)) {
      hideMenu(false);
    }

    if ((el = closestAttr(target, "data-theme-toggle"))) {
      event.preventDefault();
      toggleTheme();
      if (openMenu) {
        hideMenu(true);
      }
      return;
    }

    if ((el = closestAttr(target, "data-nav-toggle"))) {
      navToggle = el;
      setNavOpen(!navIsOpen(), true);
      return;
    }

    if ((el = closestAttr(target, "data-nav-close"))) {
      setNavOpen(false, true);
      return;
    }

    if ((el = closestAttr(target, "data-open-dialog"))) {
      event.preventDefault();
      openDialog(doc.getElementById(el.getAttribute("data-open-dialog")), el);
      return;
    }

    if ((el = closestAttr(target, "data-close-dialog"))) {
      event.preventDefault();
      closeDialog(el.closest("dialog"));
      return;
    }

    if (target.tagName === "DIALOG" && target.open && pointerDownTarget === target) {
      closeDialog(target);
      return;
    }

    if ((el = target.closest && target.closest('[data-tabs] [role="tab"]'))) {
      selectTab(el, false);
      return;
    }

    if ((el = closestAttr(target, "data-copy"))) {
      event.preventDefault();
      copy(el);
      return;
    }

    if ((el = closestAttr(target, "data-dismiss-toast"))) {
      dismissToast(el.closest(".toast"));
      return;
    }

    if ((el = closestAttr(target, "data-confirm")) && el.tagName === "A") {
      if (!window.confirm(el.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
      return;
    }

    // Following a sidebar link on a phone closes the drawer.
    if (navIsOpen() && target.closest && target.closest("#sidebar a[href]")) {
      setNavOpen(false, false);
    }
  });

  doc.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var message =
      (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      return;
    }
    // Guard against double submission: disable the button once the form is on its way.
    if (submitter && !form.hasAttribute("hx-post") && !event.defaultPrevented) {
      window.setTimeout(function () {
        submitter.setAttribute("aria-disabled", "true");
        submitter.classList.add("is-busy");
      }, 0);
    }
  });

  // Pages restored from the back/forward cache must not keep disabled buttons.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      doc.querySelectorAll('.is-busy[aria-disabled="true"]').forEach(function (btn) {
        btn.removeAttribute("aria-disabled");
        btn.classList.remove("is-busy");
      });
    }
  });

  doc.addEventListener("keydown", function (event) {
    var target = event.target;

    if (openMenu && openMenu.menu.contains(target)) {
      onMenuKeydown(event);
      return;
    }

    var tab = target.closest && target.closest('[data-tabs] [role="tab"]');
    if (tab) {
      onTabKeydown(event, tab);
      return;
    }

    var button = closestAttr(target, "data-menu-button");
    if (button && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      showMenu(button, event.key === "ArrowUp" ? -1 : 0);
      return;
    }

    if (event.key === "Escape") {
      if (openMenu) {
        hideMenu(true);
        return;
      }
      if (navIsOpen()) {
        setNavOpen(false, true);
      }
    }

    // Keep Tab inside the open drawer on phones.
    if (event.key === "Tab" && navIsOpen()) {
      var items = focusables(sidebar());
      if (!items.length) {
        return;
      }
      var first = items[0];
      var last = items[items.length - 1];
      if (event.shiftKey && doc.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && doc.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    }
  });

  // Focus leaving an open menu (e.g. with the mouse elsewhere) closes it.
  doc.addEventListener("focusin", function (event) {
    if (openMenu && !openMenu.menu.contains(event.target) && event.target !== openMenu.button) {
      hideMenu(false);
    }
  });

  /* htmx integration ------------------------------------------------------------------------ */

  doc.addEventListener("htmx:load", function (event) {
    init(event.detail && event.detail.elt);
  });

  doc.addEventListener("htmx:responseError", function (event) {
    var status = event.detail && event.detail.xhr ? event.detail.xhr.status : 0;
    showToast(
      status === 403
        ? "You are not allowed to do that, or your session expired. Reload the page and try again."
        : "Something went wrong (" + (status || "network error") + "). Try again.",
      "error"
    );
  });

  doc.addEventListener("htmx:sendError", function () {
    showToast("Could not reach the server. Check your connection and try again.", "error");
  });

  /* Start ------------------------------------------------------------------------------------ */

  if (doc.readyState === "loading") {
    doc.addEventListener("DOMContentLoaded", function () {
      init(doc);
    });
  } else {
    init(doc);
  }

  /* Files ------------------------------------------------------------------------------------ */

  // Bytes for people, as console/formatting.py writes them: "812 bytes", "1.5 KB", "12 KB".
  function formatBytes(bytes) {
    if (bytes < 1024) {
      return bytes + (bytes === 1 ? " byte" : " bytes");
    }
    var units = ["KB", "MB", "GB"];
    var value = bytes;
    var unit = "";
    for (var i = 0; i < units.length && value >= 1024; i++) {
      value /= 1024;
      unit = units[i];
    }
    return (value >= 10 ? Math.round(value) : Math.round(value * 10) / 10) + "\u00a0" + unit;
  }

  // A drop zone over a file input, inside a dialog: onFiles(files) gets the picked or dropped files
  // (a FileList). The zone shows "is-dragover" while a file is over it, and a file dropped beside
  // it must not replace the page.
  function bindDropZone(dropzone, input, dialog, onFiles) {
    input.addEventListener("change", function () {
      onFiles(input.files || []);
    });
    ["dragenter", "dragover"].forEach(function (type) {
      dropzone.addEventListener(type, function (event) {
        event.preventDefault();
        if (event.dataTransfer) {
          event.dataTransfer.dropEffect = "copy";
        }
        dropzone.classList.add("is-dragover");
      });
    });
    ["dragleave", "dragend"].forEach(function (type) {
      dropzone.addEventListener(type, function (event) {
        if (!dropzone.contains(event.relatedTarget)) {
          dropzone.classList.remove("is-dragover");
        }
      });
    });
    dropzone.addEventListener("drop", function (event) {
      event.preventDefault();
      dropzone.classList.remove("is-dragover");
      var files = event.dataTransfer ? event.dataTransfer.files : [];
      if (files.length) {
        onFiles(files);
      }
    });
    ["dragover", "drop"].forEach(function (type) {
      dialog.addEventListener(type, function (event) {
        event.preventDefault();
      });
    });
  }

  window.Quanta = {
    toast: showToast,
    openDialog: openDialog,
    closeDialog: closeDialog,
    copy: copy,
    formatBytes: formatBytes,
    bindDropZone: bindDropZone,
  };
})();
