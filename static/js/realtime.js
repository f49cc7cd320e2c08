/*
 * The console's websocket (/ws/console): one connection per tab, opened only on pages of a
 * signed-in user (<body data-realtime-url>). Shows "notify" messages as toasts, keeps the
 * connection alive with pings, and reconnects with jittered exponential backoff.
 * Every message is also dispatched as a "quanta:realtime" event on document.
 * Pages add streams with QuantaRealtime.subscribe(id, stream, params, onMessage): the subscription
 * is sent once the socket is open and again after every reconnect; onMessage gets that stream's
 * messages. "quanta:realtime-open" fires on each (re)connection (detail.reconnected is true after
 * the first), so a page can fetch what it missed while disconnected.
 * <html data-realtime> tells the state: "connecting", "connected", "disconnected" or "signed-out".
 */
(function () {
  "use strict";

  var CLOSE_UNAUTHENTICATED = 4401;
  var PING_INTERVAL = 25000;
  var MAX_DELAY = 30000;

  var root = document.documentElement;
  var path = document.body && document.body.getAttribute("data-realtime-url");
  var socket = null;
  var retries = 0;
  var retryTimer = null;
  var pingTimer = null;
  var stopped = false;
  var opened = 0;
  var subscriptions = {}; // stream id -> { stream, params, onMessage }

  if (!path || !("WebSocket" in window)) {
    return;
  }

  function setState(state) {
    root.setAttribute("data-realtime", state);
  }

  function handle(message) {
    if (message.type === "notify" && message.message && window.Quanta) {
      window.Quanta.toast(message.message, message.level || "info");
    }
    var subscription = message.id !== undefined ? subscriptions[message.id] : null;
    if (subscription && subscription.onMessage) {
      try {
        subscription.onMessage(message);
      } catch (error) {
        window.setTimeout(function () {
          throw error; // reported, without breaking the other listeners
        }, 0);
      }
    }
    document.dispatchEvent(new CustomEvent("quanta:realtime", { detail: message }));
  }

  function scheduleReconnect() {
    var delay = Math.min(MAX_DELAY, 1000 * Math.pow(2, retries)) * (0.75 + Math.random() * 0.5);
    retries += 1;
    window.clearTimeout(retryTimer);
    retryTimer = window.setTimeout(connect, delay);
  }

  function connect() {
    if (stopped) {
      return;
    }
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    try {
      socket = new WebSocket(scheme + "//" + window.location.host + path);
    } catch (error) {
      setState("disconnected");
      return;
    }
    setState("connecting");

    socket.addEventListener("open", function () {
      retries = 0;
      setState("connected");
      window.clearInterval(pingTimer);
      pingTimer = window.setInterval(function () {
        send({ type: "ping" });
      }, PING_INTERVAL);
      Object.keys(subscriptions).forEach(sendSubscribe);
      opened += 1;
      document.dispatchEvent(new CustomEvent("quanta:realtime-open", { detail: { reconnected: opened > 1 } }));
    });

    socket.addEventListener("message", function (event) {
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return; // a malformed frame is dropped; the connection stays up
      }
      handle(message);
    });

    socket.addEventListener("close", function (event) {
      window.clearInterval(pingTimer);
      socket = null;
      if (event.code === CLOSE_UNAUTHENTICATED) {
        setState("signed-out"); // signed out, here or in another tab: nothing to reconnect to
        return;
      }
      setState("disconnected");
      if (!stopped) {
        scheduleReconnect();
      }
    });
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  function sendSubscribe(id) {
    var subscription = subscriptions[id];
    send({ type: "subscribe", id: id, stream: subscription.stream, params: subscription.params || {} });
  }

  function subscribe(id, stream, params, onMessage) {
    subscriptions[id] = { stream: stream, params: params, onMessage: onMessage };
    sendSubscribe(id); // now if connected; on open otherwise
  }

  function unsubscribe(id) {
    if (subscriptions[id]) {
      delete subscriptions[id];
      send({ type: "unsubscribe", id: id });
    }
  }

  function connected() {
    return !!socket && socket.readyState === WebSocket.OPEN;
  }

  // Leaving the page: close cleanly and do not reconnect; coming back from the back/forward
  // cache: connect again.
  window.addEventListener("pagehide", function () {
    stopped = true;
    window.clearTimeout(retryTimer);
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.close(1000);
    }
  });

  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      stopped = false;
      retries = 0;
      connect();
    }
  });

  window.QuantaRealtime = { send: send, subscribe: subscribe, unsubscribe: unsubscribe, connected: connected };
  connect();
})();
