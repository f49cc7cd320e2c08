/*
 * The event log (templates/events/_event_log.html), on /events/, a device's page and a product's pages.
 *
 * Events come from the console websocket's "events" stream (realtime.js), already filtered by the
 * server: the first message carries the recent history, the next ones live events. The list shows
 * them newest first, live ones above a "Live from here" divider, in a virtualised list (fixed row
 * height, only the visible rows plus an overscan are in the DOM), at most MAX_EVENTS of them.
 *
 *   [data-event-log]                  the component; data-device-id fixes it to one device,
 *                                     data-product-id to one product's events,
 *                                     data-sync-url keeps the filter in the address bar (?q=)
 *   [data-event-log-filter]           the filter input (debounced); the server's error shows below
 *   [data-filter-example]             in the Advanced panel: adds its value to the filter
 *   [data-event-log-pause]            Pause / Play: while paused, new events wait in a queue
 *   [data-event-log-clear]            empties the list
 *   [data-event-log-export]           CSV / NDJSON download links, kept in step with the filter
 *   [data-event-log-viewport]         the listbox: click or Up/Down/Home/End/PageUp/PageDown select
 *   [data-event-publish-form]         the Publish event dialog's form (POSTs, answers JSON)
 *
 * Event data is untrusted: it only ever reaches the page as text nodes.
 */
(function () {
  "use strict";

  var doc = document;
  var MAX_EVENTS = 10000;
  var OVERSCAN = 8;
  var FILTER_DELAY = 250;
  var NEW_ROW_FLASH = 1200; // ms a live row stays highlighted
  var DATA_PREVIEW = 400; // characters of data drawn in a row
  var CHIP_COLOURS = 8;
  var DEVICE_ID = /^[0-9a-f]{24}$/i;
  var PLACEHOLDER_ID = "000000000000000000000000";
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var DIVIDER = { divider: true };

  /* Small helpers ---------------------------------------------------------------------------- */

  function toast(message, level) {
    if (window.Quanta && message) {
      window.Quanta.toast(message, level || "info");
    }
  }

  function el(tag, className, text) {
    var node = doc.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function pageIcon(name, className) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = doc.createElementNS(ns, "svg");
    svg.setAttribute("class", "icon" + (className ? " " + className : ""));
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var use = doc.createElementNS(ns, "use");
    use.setAttribute("href", "#i-" + name);
    svg.appendChild(use);
    return svg;
  }

  function spriteIcon(name) {
    var meta = doc.querySelector('meta[name="quanta-icons"]');
    var svg = pageIcon(name);
    svg.firstChild.setAttribute("href", (meta ? meta.getAttribute("content") : "") + "#" + name);
    return svg;
  }

  function pad(number, width) {
    var text = String(number);
    while (text.length < (width || 2)) {
      text = "0" + text;
    }
    return text;
  }

  function count(number, one, many) {
    return number.toLocaleString("en-US") + " " + (number === 1 ? one : many || one + "s");
  }

  function clock(date) {
    return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  }

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  // The row's time: local, with seconds; the day too when it is not today.
  function shortTime(date) {
    if (sameDay(date, new Date())) {
      return clock(date);
    }
    return MONTHS[date.getMonth()] + " " + date.getDate() + " " + clock(date);
  }

  function longTime(date) {
    var day = date.toLocaleDateString(undefined, {
      weekday: "short",
      year: "numeric",
      month: "short",
      day: "numeric"
    });
    return day + ", " + clock(date) + "." + pad(date.getMilliseconds(), 3);
  }

  function byteLength(text) {
    return window.TextEncoder ? new TextEncoder().encode(text).length : text.length;
  }

  function chipClass(name) {
    if (/^(spark|particle)(\/|$)/i.test(name)) {
      return "event-chip event-chip-system";
    }
    var hash = 0;
    for (var i = 0; i < name.length; i++) {
      hash = (hash * 31 + name.charCodeAt(i)) | 0;
    }
    return "event-chip event-chip-" + (Math.abs(hash) % CHIP_COLOURS);
  }

  // Who published it: the device's name (or ID), "API" for a user, "Cloud" for the cloud itself.
  function source(event) {
    if (event.coreid === "api") {
      return { label: "API", detail: "Published by you through the API or the console" };
    }
    if (event.coreid === "particle-internal") {
      return { label: "Cloud", detail: "Published by the cloud" };
    }
    return { label: event.device_name || event.coreid || "—", detail: event.coreid || "" };
  }

  function identity(event) {
    return event.published_at + "|" + event.coreid + "|" + event.name + "|" + event.data;
  }

  /* JSON, pretty-printed from the original text (numbers keep their exact digits) ------------- */

  var JSON_TOKEN = /\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|[{}[\]:,])/y;

  function jsonTokens(text) {
    try {
      JSON.parse(text);
    } catch (error) {
      return null;
    }
    var tokens = [];
    JSON_TOKEN.lastIndex = 0;
    var match;
    while (JSON_TOKEN.lastIndex < text.length && (match = JSON_TOKEN.exec(text))) {
      tokens.push(match[1]);
    }
    if (!/^\s*$/.test(text.slice(JSON_TOKEN.lastIndex))) {
      return null;
    }
    return tokens;
  }

  function tokenClass(token, next) {
    var first = token.charAt(0);
    if (first === '"') {
      return next === ":" ? "json-key" : "json-string";
    }
    if (token === "true" || token === "false") {
      return "json-boolean";
    }
    if (token === "null") {
      return "json-null";
    }
    if (first === "-" || (first >= "0" && first <= "9")) {
      return "json-number";
    }
    return "json-punct";
  }

  function prettyJson(tokens) {
    var fragment = doc.createDocumentFragment();
    var depth = 0;
    function newline() {
      fragment.appendChild(doc.createTextNode("\n" + new Array(depth + 1).join("  ")));
    }
    for (var i = 0; i < tokens.length; i++) {
      var token = tokens[i];
      var next = tokens[i + 1];
      if (token === "{" || token === "[") {
        if (next === (token === "{" ? "}" : "]")) {
          fragment.appendChild(el("span", "json-punct", token + next));
          i += 1;
          continue;
        }
        fragment.appendChild(el("span", "json-punct", token));
        depth += 1;
        newline();
      } else if (token === "}" || token === "]") {
        depth -= 1;
        newline();
        fragment.appendChild(el("span", "json-punct", token));
      } else if (token === ",") {
        fragment.appendChild(el("span", "json-punct", ","));
        newline();
      } else if (token === ":") {
        fragment.appendChild(el("span", "json-punct", ":"));
        fragment.appendChild(doc.createTextNode(" "));
      } else {
        fragment.appendChild(el("span", tokenClass(token, next), token));
      }
    }
    return fragment;
  }

  /* Clipboard -------------------------------------------------------------------------------- */

  function fallbackCopy(text) {
    var area = el("textarea", "visually-hidden");
    area.value = text;
    area.setAttribute("readonly", "");
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

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return fallbackCopy(text);
      });
    }
    return fallbackCopy(text);
  }

  /* The log ---------------------------------------------------------------------------------- */

  var logCount = 0;

  function EventLog(root) {
    logCount += 1;
    var self = this;
    var part = function (name) {
      return root.querySelector("[data-event-log-" + name + "]");
    };
    this.root = root;
    this.prefix = "eventlog" + logCount;
    this.deviceId = root.getAttribute("data-device-id") || "";
    this.productId = parseInt(root.getAttribute("data-product-id") || "", 10) || null;
    this.syncUrl = root.hasAttribute("data-sync-url");
    this.exportUrl = root.getAttribute("data-export-url");
    this.deviceUrl = root.getAttribute("data-device-url");

    this.input = part("filter");
    this.filterForm = part("filter-form");
    this.filterError = part("filter-error");
    this.filterErrorText = part("filter-error-text");
    this.advancedButton = part("advanced");
    this.help = part("help");
    this.pauseButton = part("pause");
    this.playLabel = part("play-label");
    this.pausedNote = part("paused-note");
    this.lag = part("lag");
    this.lagText = part("lag-text");
    this.viewport = part("viewport");
    this.spacer = part("spacer");
    this.pill = part("pill");
    this.pillText = part("pill-text");
    this.state = root.querySelector("[data-event-log-state]");
    this.countText = part("count");
    this.detail = part("detail");
    this.detailEmpty = part("detail-empty");
    this.detailContent = part("detail-content");
    this.rawButton = part("raw");
    this.copyButton = part("copy");

    this.events = []; // oldest first; seq numbers are contiguous
    this.historyLength = 0; // how many of the oldest are history (below the divider)
    this.nextSeq = 1;
    this.queue = []; // events that arrived while paused
    this.paused = false;
    this.selectedSeq = null;
    this.rowHeight = 40;
    this.rendered = new Map();
    this.renderPending = false;
    this.newCount = 0;
    this.dropped = 0;
    this.cleared = false;
    this.raw = false;
    this.filterText = this.input ? this.input.value.trim() : "";
    this.filterInvalid = this.input && this.input.getAttribute("aria-invalid") === "true";
    this.streamId = null;
    this.streams = 0;
    this.awaitingHistory = true;
    this.loaded = false;
    this.lastSeen = null; // { key, time } of the newest event received, shown or not
    this.filterTimer = null;

    this.measure();
    this.bind();
    this.subscribe();
    this.updateState();
    this.updateFooter();

    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        self.measure();
        self.render();
      }).observe(this.viewport);
    }
  }

  EventLog.prototype.measure = function () {
    var value = parseFloat(getComputedStyle(this.viewport).getPropertyValue("--event-row-height"));
    var height = value > 0 ? value : 40;
    if (height !== this.rowHeight) {
      var firstRank = Math.floor(this.viewport.scrollTop / this.rowHeight);
      this.rowHeight = height;
      this.rendered.forEach(function (row) {
        row.remove();
      });
      this.rendered = new Map();
      this.spacer.style.height = this.displayCount() * height + "px";
      this.viewport.scrollTop = firstRank * height;
    }
  };

  /* Display order: live events newest first, the divider, then history newest first. ---------- */

  EventLog.prototype.hasDivider = function () {
    return this.historyLength > 0;
  };

  EventLog.prototype.liveCount = function () {
    return this.events.length - this.historyLength;
  };

  EventLog.prototype.displayCount = function () {
    return this.events.length + (this.hasDivider() ? 1 : 0);
  };

  EventLog.prototype.itemAt = function (index) {
    var live = this.liveCount();
    if (this.hasDivider()) {
      if (index === live) {
        return DIVIDER;
      }
      if (index > live) {
        index -= 1;
      }
    }
    return this.events[this.events.length - 1 - index];
  };

  // rank: 0 for the newest event; the display index counts the divider.
  EventLog.prototype.displayIndexOfRank = function (rank) {
    return this.hasDivider() && rank >= this.liveCount() ? rank + 1 : rank;
  };

  EventLog.prototype.rankOfSeq = function (seq) {
    if (!this.events.length || seq === null) {
      return -1;
    }
    var newest = this.events[this.events.length - 1].seq;
    var rank = newest - seq;
    return rank >= 0 && rank < this.events.length ? rank : -1;
  };

  EventLog.prototype.eventAtRank = function (rank) {
    return this.events[this.events.length - 1 - rank];
  };

  EventLog.prototype.selected = function () {
    var rank = this.rankOfSeq(this.selectedSeq);
    return rank < 0 ? null : this.eventAtRank(rank);
  };

  /* Rendering -------------------------------------------------------------------------------- */

  EventLog.prototype.scheduleRender = function () {
    var self = this;
    if (this.renderPending) {
      return;
    }
    this.renderPending = true;
    window.requestAnimationFrame(function () {
      self.render();
    });
  };

  EventLog.prototype.createRow = function (item, now) {
    if (item === DIVIDER) {
      var divider = el("div", "event-row-divider");
      divider.setAttribute("role", "presentation");
      var label = el("span", "event-row-divider-label");
      label.appendChild(pageIcon("arrow-up", "icon-sm"));
      label.appendChild(doc.createTextNode("Live from here"));
      divider.appendChild(label);
      divider.appendChild(el("span", "event-row-divider-note", "Earlier events below"));
      return divider;
    }
    var event = item.event;
    var row = el("div", "event-row" + (item.live ? " is-live" : ""));
    row.id = this.prefix + "-row-" + item.seq;
    row.setAttribute("role", "option");
    row.setAttribute("data-seq", String(item.seq));
    if (item.live && now - item.arrived < NEW_ROW_FLASH) {
      row.classList.add("is-new");
    }

    var name = el("span", "event-row-name");
    name.appendChild(el("span", chipClass(event.name), event.name));
    name.title = event.name;
    row.appendChild(name);

    var data = el("span", "event-row-data");
    if (event.data === null || event.data === undefined) {
      data.appendChild(el("span", "event-row-empty", "no data"));
    } else if (event.data === "") {
      data.appendChild(el("span", "event-row-empty", "empty"));
    } else {
      data.textContent =
        event.data.length > DATA_PREVIEW ? event.data.slice(0, DATA_PREVIEW) + "…" : event.data;
    }
    row.appendChild(data);

    var from = source(event);
    var device = el("span", "event-row-device", from.label);
    device.title = from.detail;
    if (event.coreid === "api" || event.coreid === "particle-internal") {
      device.classList.add("is-special");
    }
    row.appendChild(device);

    var time = el("time", "event-row-time", shortTime(item.date));
    time.dateTime = event.published_at;
    time.title = event.published_at;
    row.appendChild(time);
    return row;
  };

  EventLog.prototype.render = function () {
    this.renderPending = false;
    var rowHeight = this.rowHeight;
    var total = this.displayCount();
    this.spacer.style.height = total * rowHeight + "px";
    var top = this.viewport.scrollTop;
    var height = this.viewport.clientHeight || rowHeight * 10;
    var first = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
    var last = Math.min(total, Math.ceil((top + height) / rowHeight) + OVERSCAN);
    var keep = new Map();
    var order = [];
    var now = Date.now();
    var setSize = String(this.events.length);
    var liveCount = this.liveCount();
    var divider = this.hasDivider();
    for (var index = first; index < last; index++) {
      var item = this.itemAt(index);
      var key = item === DIVIDER ? "divider" : item.seq;
      var row = this.rendered.get(key) || this.createRow(item, now);
      row.style.transform = "translateY(" + index * rowHeight + "px)";
      if (item !== DIVIDER) {
        var selected = item.seq === this.selectedSeq;
        if (row.classList.contains("is-selected") !== selected) {
          row.classList.toggle("is-selected", selected);
        }
        row.setAttribute("aria-selected", selected ? "true" : "false");
        row.setAttribute("aria-posinset", String(divider && index > liveCount ? index : index + 1));
        row.setAttribute("aria-setsize", setSize);
      }
      keep.set(key, row);
      order.push(row);
    }
    this.rendered.forEach(function (row, key) {
      if (!keep.has(key)) {
        row.remove();
      }
    });
    // The DOM follows the display order, for screen readers (and anyone reading the markup).
    var spacer = this.spacer;
    var previous = null;
    order.forEach(function (row) {
      var expected = previous ? previous.nextSibling : spacer.firstChild;
      if (row !== expected) {
        spacer.insertBefore(row, expected);
      }
      previous = row;
    });
    this.rendered = keep;
    var selectedRow = this.selectedSeq !== null ? keep.get(this.selectedSeq) : null;
    if (selectedRow) {
      this.viewport.setAttribute("aria-activedescendant", selectedRow.id);
    } else {
      this.viewport.removeAttribute("aria-activedescendant");
    }
  };

  EventLog.prototype.updateState = function () {
    var state = "none";
    if (!this.events.length) {
      if (this.filterInvalid && !this.loaded) {
        state = "invalid";
      } else if (this.awaitingHistory && !this.loaded) {
        state = "loading";
      } else if (this.cleared) {
        state = "cleared";
      } else if (this.filterText) {
        state = "no-match";
      } else {
        state = "empty";
      }
    }
    this.state.setAttribute("data-event-log-state", state);
    var echo = this.root.querySelector("[data-event-log-filter-echo]");
    if (echo) {
      echo.textContent = this.filterText;
    }
    this.root.classList.toggle("is-empty", state !== "none");
  };

  EventLog.prototype.updateFooter = function () {
    var total = this.events.length;
    var text = total ? count(total, "event") : "No events";
    if (total >= MAX_EVENTS) {
      text += " (the newest " + MAX_EVENTS.toLocaleString("en-US") + " are kept)";
    }
    this.countText.textContent = text;
    var queued = this.queue.length;
    this.playLabel.textContent = queued ? "Play (" + queued.toLocaleString("en-US") + " new)" : "Play";
    this.pausedNote.hidden = !this.paused;
  };

  EventLog.prototype.updatePill = function () {
    if (this.newCount > 0) {
      this.pillText.textContent = count(this.newCount, "new event");
      this.pill.hidden = false;
    } else {
      this.pill.hidden = true;
    }
  };

  /* Receiving -------------------------------------------------------------------------------- */

  EventLog.prototype.record = function (event, live) {
    var date = new Date(event.published_at);
    return {
      seq: this.nextSeq++,
      event: event,
      live: live,
      date: isNaN(date.getTime()) ? new Date() : date,
      arrived: Date.now()
    };
  };

  EventLog.prototype.remember = function (events) {
    if (events.length) {
      var newest = events[events.length - 1];
      this.lastSeen = { key: identity(newest), time: newest.published_at };
    }
  };

  EventLog.prototype.trim = function () {
    var excess = this.events.length - MAX_EVENTS;
    if (excess > 0) {
      this.events.splice(0, excess);
      this.historyLength = Math.max(0, this.historyLength - excess);
      if (this.selectedSeq !== null && this.rankOfSeq(this.selectedSeq) < 0) {
        this.select(null);
      }
    }
  };

  // A fresh view: the history of a new subscription (page load or a new filter).
  EventLog.prototype.reset = function (history) {
    var self = this;
    var selected = this.selected();
    var selectedKey = selected ? identity(selected.event) : null;
    var start = Math.max(0, history.length - MAX_EVENTS);
    this.events = history.slice(start).map(function (event) {
      return self.record(event, false);
    });
    this.historyLength = this.events.length;
    this.queue = [];
    this.cleared = false;
    this.newCount = 0;
    this.updatePill();
    this.remember(history);
    this.rendered.forEach(function (row) {
      row.remove();
    });
    this.rendered = new Map();
    this.viewport.scrollTop = 0;
    var again = selectedKey
      ? this.events.filter(function (item) {
          return identity(item.event) === selectedKey;
        })[0]
      : null;
    this.select(again ? again.seq : null);
  };

  // The history sent again after a reconnection: add only what arrived while disconnected.
  EventLog.prototype.resync = function (history) {
    var missed = history;
    if (this.lastSeen) {
      var key = this.lastSeen.key;
      var time = this.lastSeen.time;
      var index = -1;
      for (var i = history.length - 1; i >= 0; i--) {
        if (identity(history[i]) === key) {
          index = i;
          break;
        }
      }
      missed =
        index >= 0
          ? history.slice(index + 1)
          : history.filter(function (event) {
              return event.published_at > time;
            });
    }
    this.receive(missed);
  };

  EventLog.prototype.receive = function (events) {
    if (!events.length) {
      return;
    }
    this.remember(events);
    if (this.paused) {
      Array.prototype.push.apply(this.queue, events);
      if (this.queue.length > MAX_EVENTS) {
        this.queue.splice(0, this.queue.length - MAX_EVENTS);
      }
      this.updateFooter();
      return;
    }
    this.addLive(events);
  };

  EventLog.prototype.addLive = function (events) {
    var self = this;
    var scrolled = this.viewport.scrollTop > 1;
    events.forEach(function (event) {
      self.events.push(self.record(event, true));
    });
    this.trim();
    this.cleared = false;
    // The new rows go on top: keep a reader's position and say how many arrived above.
    var added = Math.min(events.length, MAX_EVENTS);
    if (scrolled) {
      this.spacer.style.height = this.displayCount() * this.rowHeight + "px";
      this.viewport.scrollTop += added * this.rowHeight;
      this.newCount += added;
      this.updatePill();
    }
    this.render();
    this.updateState();
    this.updateFooter();
  };

  EventLog.prototype.onMessage = function (message) {
    if (message.type === "subscribed") {
      this.root.setAttribute("data-live", "on");
      return;
    }
    if (message.type === "error") {
      this.showFilterError(message.message || "This filter cannot be used.");
      // The server kept nothing for it; a corrected filter subscribes again.
      if (window.QuantaRealtime && this.streamId) {
        window.QuantaRealtime.unsubscribe(this.streamId);
      }
      this.updateState();
      return;
    }
    if (message.type !== "stream") {
      return;
    }
    if (Array.isArray(message.history)) {
      this.hideFilterError();
      this.root.classList.remove("is-refreshing");
      if (this.awaitingHistory) {
        this.awaitingHistory = false;
        this.loaded = true;
        this.reset(message.history);
      } else {
        this.resync(message.history);
      }
      this.root.setAttribute("data-ready", "");
      this.render();
      this.updateState();
      this.updateFooter();
    }
    if (message.events && message.events.length) {
      this.receive(message.events);
    }
    if (message.dropped > 0) {
      this.noteDropped(message.dropped);
    }
  };

  EventLog.prototype.noteDropped = function (dropped) {
    this.dropped += dropped;
    this.lagText.textContent =
      "Your connection fell behind; " +
      count(this.dropped, "event") +
      (this.dropped === 1 ? " was" : " were") +
      " skipped.";
    this.lag.hidden = false;
  };

  /* Subscribing and the filter --------------------------------------------------------------- */

  EventLog.prototype.subscribe = function () {
    var realtime = window.QuantaRealtime;
    if (!realtime) {
      return;
    }
    if (this.streamId) {
      realtime.unsubscribe(this.streamId);
    }
    this.streams += 1;
    var id = this.prefix + "-" + this.streams;
    this.streamId = id;
    this.awaitingHistory = true;
    var params = { filter: this.filterText, history: true };
    if (this.deviceId) {
      params.device_id = this.deviceId;
    }
    if (this.productId) {
      params.product_id = this.productId;
    }
    var self = this;
    realtime.subscribe(id, "events", params, function (message) {
      if (id === self.streamId) {
        self.onMessage(message);
      }
    });
  };

  EventLog.prototype.showFilterError = function (message) {
    this.filterInvalid = true;
    this.filterErrorText.textContent = message;
    this.filterError.hidden = false;
    this.input.setAttribute("aria-invalid", "true");
    this.root.classList.add("is-refreshing");
  };

  EventLog.prototype.hideFilterError = function () {
    this.filterInvalid = false;
    this.filterError.hidden = true;
    this.filterErrorText.textContent = "";
    this.input.removeAttribute("aria-invalid");
  };

  EventLog.prototype.exportHref = function (format) {
    var params = new URLSearchParams();
    params.set("format", format);
    if (this.filterText) {
      params.set("q", this.filterText);
    }
    if (this.deviceId) {
      params.set("device", this.deviceId);
    }
    return this.exportUrl + "?" + params.toString();
  };

  EventLog.prototype.applyFilter = function (force) {
    window.clearTimeout(this.filterTimer);
    var text = this.input.value.trim();
    if (text === this.filterText && !force) {
      return;
    }
    this.filterText = text;
    if (this.syncUrl) {
      var url = new URL(window.location.href);
      if (text) {
        url.searchParams.set("q", text);
      } else {
        url.searchParams.delete("q");
      }
      window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
    }
    var self = this;
    this.root.querySelectorAll("[data-event-log-export]").forEach(function (link) {
      link.setAttribute("href", self.exportHref(link.getAttribute("data-event-log-export")));
    });
    this.root.classList.add("is-refreshing");
    this.subscribe();
  };

  EventLog.prototype.addToFilter = function (term) {
    var current = this.input.value.trim();
    this.input.value = current ? current + " " + term : term;
    this.input.focus();
    this.applyFilter(false);
  };

  /* Selection and the detail pane ------------------------------------------------------------ */

  EventLog.prototype.select = function (seq, options) {
    options = options || {};
    this.selectedSeq = seq;
    var item = this.selected();
    if (!item) {
      this.selectedSeq = null;
    }
    this.root.classList.toggle("has-selection", !!item);
    this.renderDetail(item);
    if (item && options.reveal) {
      this.reveal(this.rankOfSeq(item.seq));
    }
    this.render();
  };

  // Keep the row of this rank inside the viewport.
  EventLog.prototype.reveal = function (rank) {
    var top = this.displayIndexOfRank(rank) * this.rowHeight;
    var viewport = this.viewport;
    if (top < viewport.scrollTop) {
      viewport.scrollTop = top;
    } else if (top + this.rowHeight > viewport.scrollTop + viewport.clientHeight) {
      viewport.scrollTop = top + this.rowHeight - viewport.clientHeight;
    }
  };

  EventLog.prototype.move = function (delta) {
    var total = this.events.length;
    if (!total) {
      return;
    }
    var rank = this.rankOfSeq(this.selectedSeq);
    var next;
    if (rank < 0) {
      next = delta === Infinity ? total - 1 : 0;
    } else if (delta === Infinity) {
      next = total - 1;
    } else if (delta === -Infinity) {
      next = 0;
    } else {
      next = Math.max(0, Math.min(total - 1, rank + delta));
    }
    this.select(this.eventAtRank(next).seq, { reveal: true });
  };

  EventLog.prototype.renderDetail = function (item) {
    var content = this.detailContent;
    this.detailEmpty.hidden = !!item;
    content.hidden = !item;
    if (!item) {
      return;
    }
    var event = item.event;
    var field = function (name) {
      return content.querySelector('[data-detail="' + name + '"]');
    };
    field("name").textContent = event.name;

    var device = field("device");
    device.textContent = "";
    var from = source(event);
    if (DEVICE_ID.test(event.coreid || "")) {
      var link = el("a", "", from.label);
      link.href = this.deviceUrl.replace(PLACEHOLDER_ID, event.coreid);
      device.appendChild(link);
      if (event.device_name) {
        device.appendChild(el("code", "event-log-detail-id", event.coreid));
      }
    } else {
      device.appendChild(doc.createTextNode(from.label));
      if (from.detail && from.detail !== from.label) {
        device.appendChild(el("span", "event-log-detail-sub", from.detail));
      }
    }

    var published = field("published");
    published.textContent = "";
    var time = el("time", "", longTime(item.date));
    time.dateTime = event.published_at;
    published.appendChild(time);
    published.appendChild(el("code", "event-log-detail-id", event.published_at));

    field("ttl").textContent = event.ttl === undefined || event.ttl === null ? "—" : event.ttl + " s";

    var hasData = typeof event.data === "string";
    field("size").textContent = hasData ? "· " + count(byteLength(event.data), "byte") : "";
    this.copyButton.disabled = !hasData;
    this.renderData(event);
  };

  EventLog.prototype.renderData = function (event) {
    var pre = this.detailContent.querySelector('[data-detail="data"]');
    pre.textContent = "";
    pre.classList.remove("is-empty");
    var raw = this.rawButton;
    if (typeof event.data !== "string") {
      pre.appendChild(el("span", "json-none", "No data"));
      pre.classList.add("is-empty");
      raw.disabled = true;
      raw.setAttribute("aria-pressed", "false");
      raw.title = "This event has no data";
      return;
    }
    var tokens = event.data.trim() ? jsonTokens(event.data) : null;
    if (!tokens) {
      raw.disabled = true;
      raw.setAttribute("aria-pressed", "true");
      raw.title = "Not JSON: shown exactly as published";
      if (event.data === "") {
        pre.appendChild(el("span", "json-none", "Empty string"));
        pre.classList.add("is-empty");
      } else {
        pre.textContent = event.data;
      }
      return;
    }
    raw.disabled = false;
    raw.setAttribute("aria-pressed", this.raw ? "true" : "false");
    raw.title = this.raw ? "Show the data formatted" : "Show the data exactly as published";
    if (this.raw) {
      pre.textContent = event.data;
    } else {
      pre.appendChild(prettyJson(tokens));
    }
  };

  EventLog.prototype.copySelected = function () {
    var item = this.selected();
    if (!item || typeof item.event.data !== "string") {
      return;
    }
    var name = item.event.name;
    copyText(item.event.data).then(
      function () {
        toast("Copied the data of " + name + ".", "success");
      },
      function () {
        toast("Could not copy. Switch to RAW, select the data and copy it by hand.", "error");
      }
    );
  };

  /* Pause, play, clear ----------------------------------------------------------------------- */

  EventLog.prototype.setPaused = function (paused) {
    this.paused = paused;
    this.root.classList.toggle("is-paused", paused);
    this.pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
    if (!paused && this.queue.length) {
      var queued = this.queue;
      this.queue = [];
      this.addLive(queued);
    }
    this.updateFooter();
  };

  EventLog.prototype.clear = function () {
    if (this.events.length) {
      this.remember(
        this.events.slice(-1).map(function (item) {
          return item.event;
        })
      );
    }
    this.remember(this.queue);
    this.events = [];
    this.historyLength = 0;
    this.queue = [];
    this.newCount = 0;
    this.dropped = 0;
    this.lag.hidden = true;
    this.cleared = true;
    this.updatePill();
    this.viewport.scrollTop = 0;
    this.select(null);
    this.updateState();
    this.updateFooter();
  };

  /* Wiring ----------------------------------------------------------------------------------- */

  EventLog.prototype.bind = function () {
    var self = this;
    var root = this.root;

    this.input.addEventListener("input", function () {
      window.clearTimeout(self.filterTimer);
      self.filterTimer = window.setTimeout(function () {
        self.applyFilter(false);
      }, FILTER_DELAY);
    });
    this.filterForm.addEventListener("submit", function (event) {
      event.preventDefault();
      self.applyFilter(self.filterInvalid);
    });

    this.viewport.addEventListener("scroll", function () {
      if (self.viewport.scrollTop <= 1 && self.newCount) {
        self.newCount = 0;
        self.updatePill();
      }
      self.scheduleRender();
    });

    this.viewport.addEventListener("click", function (event) {
      var row = event.target.closest && event.target.closest(".event-row");
      if (row) {
        self.select(parseInt(row.getAttribute("data-seq"), 10), { reveal: true });
        self.showDetailIfBelow();
      }
    });

    this.viewport.addEventListener("keydown", function (event) {
      var page = Math.max(1, Math.floor(self.viewport.clientHeight / self.rowHeight) - 1);
      var moves = {
        ArrowDown: 1,
        ArrowUp: -1,
        PageDown: page,
        PageUp: -page,
        Home: -Infinity,
        End: Infinity
      };
      if (event.altKey || event.ctrlKey || event.metaKey) {
        return;
      }
      if (Object.prototype.hasOwnProperty.call(moves, event.key)) {
        event.preventDefault();
        self.move(moves[event.key]);
      } else if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        if (self.selectedSeq === null) {
          self.move(1);
        }
        self.showDetailIfBelow();
      } else if (event.key === "Escape" && self.selectedSeq !== null) {
        event.preventDefault();
        self.select(null);
      }
    });

    root.addEventListener("click", function (event) {
      var target = event.target;
      if (!target.closest) {
        return;
      }
      var found;
      if ((found = target.closest("[data-filter-example]"))) {
        self.addToFilter(found.getAttribute("data-filter-example"));
      } else if (target.closest("[data-event-log-advanced]")) {
        var open = self.help.hidden;
        self.help.hidden = !open;
        self.advancedButton.setAttribute("aria-expanded", open ? "true" : "false");
      } else if (target.closest("[data-event-log-pause]")) {
        self.setPaused(!self.paused);
      } else if (target.closest("[data-event-log-clear]")) {
        self.clear();
      } else if (target.closest("[data-event-log-pill]")) {
        self.viewport.scrollTop = 0;
        self.newCount = 0;
        self.updatePill();
        self.viewport.focus();
      } else if (target.closest("[data-event-log-lag-dismiss]")) {
        self.lag.hidden = true;
        self.dropped = 0;
      } else if (target.closest("[data-event-log-filter-reset]")) {
        self.input.value = "";
        self.applyFilter(true);
        self.input.focus();
      } else if (target.closest("[data-event-log-deselect]")) {
        self.select(null);
        self.viewport.focus();
      } else if (target.closest("[data-event-log-raw]")) {
        self.raw = !self.raw;
        var item = self.selected();
        if (item) {
          self.renderData(item.event);
        }
      } else if (target.closest("[data-event-log-copy]")) {
        self.copySelected();
      } else if ((found = target.closest("[data-event-log-export]"))) {
        // The download starts; close the menu the way quanta.js does (Escape), focus back on Export.
        window.setTimeout(function () {
          found.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
        }, 0);
      }
    });

    this.pauseButton.setAttribute("aria-pressed", "false");
  };

  // On narrow screens the detail pane is below the list: bring it into view when it is not.
  EventLog.prototype.showDetailIfBelow = function () {
    if (!this.detail || this.selectedSeq === null) {
      return;
    }
    var box = this.detail.getBoundingClientRect();
    var list = this.viewport.getBoundingClientRect();
    if (box.top >= list.bottom - 1 && box.top > window.innerHeight - 120) {
      this.detail.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
  };

  /* The Publish event dialog ----------------------------------------------------------------- */

  function fieldError(form, name, message) {
    var input = form.querySelector('[name="' + name + '"]');
    var field = form.querySelector('[data-publish-field="' + name + '"]');
    if (!input || !field) {
      return false;
    }
    var id = "publish-" + name + "-error";
    var list = el("ul", "field-errors");
    list.id = id;
    list.setAttribute("data-publish-field-error", "");
    var item = el("li");
    item.appendChild(spriteIcon("alert"));
    item.appendChild(el("span", "", message));
    list.appendChild(item);
    input.insertAdjacentElement("afterend", list);
    field.classList.add("field-invalid");
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id + " " + (input.getAttribute("data-help") || ""));
    return true;
  }

  function clearErrors(form) {
    form.querySelectorAll("[data-publish-field-error]").forEach(function (node) {
      node.remove();
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (input) {
      input.removeAttribute("aria-invalid");
      input.setAttribute("aria-describedby", input.getAttribute("data-help") || "");
    });
    form.querySelectorAll(".field-invalid").forEach(function (field) {
      field.classList.remove("field-invalid");
    });
    var general = form.querySelector('[data-publish-error="__all__"]');
    general.hidden = true;
  }

  function generalError(form, message) {
    var general = form.querySelector('[data-publish-error="__all__"]');
    general.querySelector("[data-publish-error-text]").textContent = message;
    general.hidden = false;
  }

  function csrfToken(form) {
    var input = form.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }

  function bindPublish(form) {
    var dialog = form.closest("dialog");
    var submit = form.querySelector("[data-publish-submit]");
    form.querySelectorAll("[aria-describedby]").forEach(function (input) {
      input.setAttribute("data-help", input.getAttribute("aria-describedby"));
    });
    if (dialog) {
      dialog.addEventListener("close", function () {
        clearErrors(form);
      });
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (submit.getAttribute("aria-disabled") === "true") {
        return;
      }
      clearErrors(form);
      var name = form.querySelector('[name="name"]').value.trim();
      submit.setAttribute("aria-disabled", "true");
      submit.classList.add("is-busy");
      var done = function () {
        submit.removeAttribute("aria-disabled");
        submit.classList.remove("is-busy");
      };
      window
        .fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          credentials: "same-origin",
          headers: { "X-CSRFToken": csrfToken(form), Accept: "application/json" }
        })
        .then(function (response) {
          return response.json().then(
            function (body) {
              return { status: response.status, body: body };
            },
            function () {
              return { status: response.status, body: null };
            }
          );
        })
        .then(function (answer) {
          done();
          var body = answer.body;
          if (body && body.ok) {
            if (dialog && window.Quanta) {
              window.Quanta.closeDialog(dialog);
            }
            form.reset();
            toast("Published " + ((body.event && body.event.name) || name) + ".", "success");
            return;
          }
          if (!body || !body.errors) {
            generalError(
              form,
              answer.status === 403
                ? "Your session expired. Reload the page and try again."
                : "Something went wrong (" + answer.status + "). Try again."
            );
            return;
          }
          var first = null;
          Object.keys(body.errors).forEach(function (key) {
            if (key === "__all__" || !fieldError(form, key, body.errors[key])) {
              generalError(form, body.errors[key]);
            } else if (!first) {
              first = form.querySelector('[name="' + key + '"]');
            }
          });
          if (first) {
            first.focus();
          }
        })
        .catch(function () {
          done();
          generalError(form, "Could not reach the server. Check your connection and try again.");
        });
    });
    form.addEventListener("input", function (event) {
      var input = event.target;
      if (input.getAttribute && input.getAttribute("aria-invalid") === "true") {
        var error = form.querySelector("#publish-" + input.name + "-error");
        if (error) {
          error.remove();
        }
        input.removeAttribute("aria-invalid");
        input.setAttribute("aria-describedby", input.getAttribute("data-help") || "");
        var field = input.closest(".field");
        if (field) {
          field.classList.remove("field-invalid");
        }
      }
    });
  }

  /* Start ------------------------------------------------------------------------------------ */

  var logs = [];

  function start() {
    doc.querySelectorAll("[data-event-log]").forEach(function (root) {
      var log = new EventLog(root);
      root.eventLog = log; // for the browser tests, which feed it synthetic stream messages
      logs.push(log);
    });
    doc.querySelectorAll("[data-event-publish-form]").forEach(bindPublish);
  }

  // "/" jumps to the filter, as in many consoles.
  doc.addEventListener("keydown", function (event) {
    var target = event.target;
    if (
      event.key !== "/" ||
      event.ctrlKey ||
      event.metaKey ||
      event.altKey ||
      !logs.length ||
      (target.closest && target.closest("input, textarea, select, [contenteditable], dialog"))
    ) {
      return;
    }
    event.preventDefault();
    logs[0].input.focus();
    logs[0].input.select();
  });

  if (doc.readyState === "loading") {
    doc.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
