/*
 * The device pages: rename in place, the unclaim dialog, live status and last-heard times.
 * A device's events are the event log's (static/js/eventlog.js).
 *
 *   [data-rename]                a name with its hidden rename form; [data-rename-open] shows the
 *                                form, [data-rename-cancel] or Escape puts the name back
 *   [data-unclaim-url]           opens the shared unclaim dialog for that device
 *                                (data-unclaim-subject names it)
 *   [data-device-id="ID"]        a list row, updated from the events stream
 *   [data-device-detail="ID"]    a device's page, updated from the stream of its events
 *   [data-device-status]         an online indicator;  [data-last-heard]  a last-heard cell
 *   time[data-relative]          relative times, kept current
 *   The list and the page get data-live="on" once their stream is subscribed.
 *
 * htmx: the server answers a failed action with a partial that explains it (status 200, so it is
 * swapped in place); an HX-Trigger "quanta:toast" event shows a toast.
 */
(function () {
  "use strict";

  var doc = document;
  var RELATIVE_REFRESH = 30000;
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var UNITS = [
    [31536000, "year"],
    [2592000, "month"],
    [604800, "week"],
    [86400, "day"],
    [3600, "hour"],
    [60, "minute"]
  ];
  var NBSP = "\u00a0";

  function toast(message, level) {
    if (window.Quanta && message) {
      window.Quanta.toast(message, level || "info");
    }
  }

  /* Times ------------------------------------------------------------------------------------ */

  function pad(number, width) {
    var text = String(number);
    while (text.length < (width || 2)) {
      text = "0" + text;
    }
    return text;
  }

  // Like Django's timesince: the largest unit and the next one ("2 hours, 5 minutes ago").
  function relative(date) {
    var seconds = Math.floor((Date.now() - date.getTime()) / 1000);
    if (seconds < 60) {
      return "just now";
    }
    for (var i = 0; i < UNITS.length; i++) {
      var count = Math.floor(seconds / UNITS[i][0]);
      if (count >= 1) {
        var text = count + NBSP + UNITS[i][1] + (count === 1 ? "" : "s");
        if (i + 1 < UNITS.length) {
          var rest = Math.floor((seconds - count * UNITS[i][0]) / UNITS[i + 1][0]);
          if (rest >= 1) {
            text += ", " + rest + NBSP + UNITS[i + 1][1] + (rest === 1 ? "" : "s");
          }
        }
        return text + " ago";
      }
    }
    return "just now";
  }

  // The server renders times in UTC ("Mar 4, 2026 14:05"); live values match it.
  function absolute(date) {
    return (
      MONTHS[date.getUTCMonth()] +
      " " +
      date.getUTCDate() +
      ", " +
      date.getUTCFullYear() +
      " " +
      pad(date.getUTCHours()) +
      ":" +
      pad(date.getUTCMinutes())
    );
  }

  function relativeTime(date) {
    var time = doc.createElement("time");
    time.dateTime = date.toISOString();
    time.title = absolute(date) + " · " + date.toISOString();
    time.setAttribute("data-relative", "");
    time.textContent = relative(date);
    return time;
  }

  function refreshRelativeTimes() {
    doc.querySelectorAll("time[data-relative]").forEach(function (time) {
      var date = new Date(time.getAttribute("datetime"));
      if (!isNaN(date.getTime())) {
        var text = relative(date);
        if (time.textContent !== text) {
          time.textContent = text;
        }
      }
    });
  }

  function eventDate(event) {
    var date = new Date(event.published_at);
    return isNaN(date.getTime()) ? new Date() : date;
  }

  /* Status and last heard -------------------------------------------------------------------- */

  function flash(element) {
    element.classList.remove("is-changed");
    void element.offsetWidth; // restart the animation
    element.classList.add("is-changed");
  }

  function setStatus(scope, online) {
    var state = online ? "online" : "offline";
    scope.querySelectorAll("[data-device-status]").forEach(function (status) {
      if (status.getAttribute("data-device-status") === state) {
        return;
      }
      status.setAttribute("data-device-status", state);
      var label = status.querySelector(".device-status-label");
      if (label) {
        label.textContent = online ? "Online" : "Offline";
      }
      flash(status);
    });
    if (scope.hasAttribute("data-device-online")) {
      scope.setAttribute("data-device-online", online ? "true" : "false");
    }
  }

  function setLastHeard(scope, date) {
    scope.querySelectorAll("[data-last-heard]").forEach(function (cell) {
      var current = cell.querySelector("time");
      if (current && new Date(current.getAttribute("datetime")) >= date) {
        return;
      }
      Array.prototype.slice.call(cell.childNodes).forEach(function (node) {
        if (!(node.classList && node.classList.contains("cell-label"))) {
          node.remove();
        }
      });
      cell.appendChild(relativeTime(date));
    });
  }

  function applyEvent(scope, event) {
    if (event.name === "spark/status" && (event.data === "online" || event.data === "offline")) {
      setStatus(scope, event.data === "online");
    }
    setLastHeard(scope, eventDate(event));
  }

  /* The device list -------------------------------------------------------------------------- */

  var refreshTimer = null;

  function listRows(deviceId) {
    var table = doc.getElementById("device-table");
    return table ? table.querySelectorAll('[data-device-id="' + CSS.escape(deviceId) + '"]') : [];
  }

  // Fetch the table again (after a reconnection, or when the stream dropped events), unless the
  // user is in the middle of renaming a device.
  function refreshList() {
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(function () {
      var table = doc.getElementById("device-table");
      if (!table || !window.htmx || table.querySelector(".rename.is-editing")) {
        return;
      }
      window.htmx.ajax("GET", window.location.pathname + window.location.search, {
        target: "#device-table",
        swap: "innerHTML"
      });
    }, 500);
  }

  function startList() {
    if (!doc.querySelector("[data-device-list]") || !window.QuantaRealtime) {
      return;
    }
    var list = doc.querySelector("[data-device-list]");
    window.QuantaRealtime.subscribe("devices", "events", { prefix: "", history: false }, function (message) {
      if (message.type === "subscribed") {
        list.setAttribute("data-live", "on");
      }
      if (message.type !== "stream") {
        return;
      }
      (message.events || []).forEach(function (event) {
        listRows(event.coreid).forEach(function (row) {
          applyEvent(row, event);
        });
      });
      if (message.dropped) {
        refreshList();
      }
    });
    doc.addEventListener("quanta:realtime-open", function (event) {
      if (event.detail && event.detail.reconnected) {
        refreshList();
      }
    });
  }

  /* A device's page -------------------------------------------------------------------------- */

  function startDetail() {
    var page = doc.querySelector("[data-device-detail]");
    if (!page || !window.QuantaRealtime) {
      return;
    }
    var deviceId = page.getAttribute("data-device-detail");
    window.QuantaRealtime.subscribe("device", "events", { prefix: "", device_id: deviceId, history: false }, function (message) {
      if (message.type === "subscribed") {
        page.setAttribute("data-live", "on");
      }
      if (message.type !== "stream") {
        return;
      }
      (message.events || []).forEach(function (event) {
        if (event.coreid !== deviceId) {
          return;
        }
        applyEvent(page, event);
      });
    });
  }

  /* Rename in place -------------------------------------------------------------------------- */

  var renameFocus = null; // the id of a rename being saved, to put focus back after the swap

  function renameParts(container) {
    return {
      display: container.querySelector(".rename-display"),
      form: container.querySelector(".rename-form"),
      input: container.querySelector(".rename-input"),
      opener: container.querySelector("[data-rename-open]")
    };
  }

  function renameOpen(container) {
    var parts = renameParts(container);
    parts.display.hidden = true;
    parts.form.hidden = false;
    container.classList.add("is-editing");
    parts.input.focus();
    parts.input.select();
  }

  function renameCancel(container) {
    var parts = renameParts(container);
    parts.input.value = parts.input.getAttribute("data-original");
    parts.input.removeAttribute("aria-invalid");
    var error = parts.form.querySelector(".rename-error");
    if (error) {
      error.remove();
    }
    parts.form.hidden = true;
    parts.display.hidden = false;
    container.classList.remove("is-editing");
    parts.opener.focus();
  }

  function renamed(container) {
    // A saved name on a device's page is also its breadcrumb and the window title.
    if (!container.classList.contains("rename-detail")) {
      return;
    }
    var name = container.querySelector("[data-device-name]");
    if (!name) {
      return;
    }
    doc.querySelectorAll(".topbar-breadcrumb [data-device-name]").forEach(function (crumb) {
      crumb.textContent = name.textContent;
    });
    var parts = doc.title.split(" · ");
    parts[0] = name.textContent;
    doc.title = parts.join(" · ");
  }

  /* Listeners -------------------------------------------------------------------------------- */

  doc.addEventListener("click", function (event) {
    var target = event.target;
    var el;
    if (!target.closest) {
      return;
    }
    if ((el = target.closest("[data-rename-open]"))) {
      renameOpen(el.closest("[data-rename]"));
      return;
    }
    if ((el = target.closest("[data-rename-cancel]"))) {
      renameCancel(el.closest("[data-rename]"));
      return;
    }
    if ((el = target.closest("[data-unclaim-url]"))) {
      // quanta.js opens the dialog (data-open-dialog); point it at this device.
      var dialog = doc.getElementById(el.getAttribute("data-open-dialog") || "unclaim-dialog");
      if (dialog) {
        dialog.querySelector("[data-unclaim-form]").setAttribute("action", el.getAttribute("data-unclaim-url"));
        dialog.querySelector("[data-unclaim-subject]").textContent = el.getAttribute("data-unclaim-subject");
      }
    }
  });

  doc.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key === "Escape" && target.classList && target.classList.contains("rename-input")) {
      event.preventDefault();
      event.stopPropagation();
      renameCancel(target.closest("[data-rename]"));
      return;
    }
    // "/" jumps to the device search, as in many consoles.
    if (
      event.key === "/" &&
      !event.ctrlKey &&
      !event.metaKey &&
      !event.altKey &&
      !(target.closest && target.closest("input, textarea, select, [contenteditable], dialog"))
    ) {
      var search = doc.getElementById("device-search-input");
      if (search) {
        event.preventDefault();
        search.focus();
        search.select();
      }
    }
  });

  doc.addEventListener("htmx:beforeRequest", function (event) {
    var container = event.target.closest && event.target.closest("[data-rename]");
    renameFocus = container ? container.id : null;
  });

  doc.addEventListener("htmx:load", function (event) {
    var element = event.detail && event.detail.elt;
    if (!element || !element.matches) {
      return;
    }
    if (element.matches("[data-rename]")) {
      if (!element.classList.contains("is-editing")) {
        renamed(element);
        if (renameFocus === element.id) {
          var link = element.querySelector("a[data-device-name]") || element.querySelector("[data-rename-open]");
          link.focus();
        }
      }
      renameFocus = null;
      return;
    }
    var invalid = element.querySelector('[aria-invalid="true"]');
    if (invalid) {
      invalid.focus(); // a form came back with an error: put the cursor in the field
    }
  });

  doc.addEventListener("quanta:toast", function (event) {
    var detail = event.detail || {};
    toast(detail.message, detail.level);
  });

  /* Start ------------------------------------------------------------------------------------ */

  function start() {
    startList();
    startDetail();
    window.setInterval(refreshRelativeTimes, RELATIVE_REFRESH);
  }

  if (doc.readyState === "loading") {
    doc.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
