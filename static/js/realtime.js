/*
 * The console's websocket (/ws/console): one connection per tab. Shows notifications as toasts
 * and reconnects with backoff. Pages add streams by listening for "quanta:realtime" events.
 * Sets data-realtime on <html> to "connected" or "disconnected" for styles and tests.
 */
(function () {
  "use strict";

  var root = document.documentElement;
  var retryDelay = 1000;
  var socket = null;

  function setState(state) {
    root.dataset.realtime = state;
  }

  function handle(message) {
    if (message.type === "notify" && window.Quanta) {
      window.Quanta.toast(message.message, message.level || "info");
    }
    document.dispatchEvent(new CustomEvent("quanta:realtime", { detail: message }));
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + window.location.host + "/ws/console");
    socket.addEventListener("open", function () {
      retryDelay = 1000;
      setState("connected");
    });
    socket.addEventListener("message", function (event) {
      try {
        handle(JSON.parse(event.data));
      } catch (error) {
        // A malformed frame is dropped; the connection stays up.
      }
    });
    socket.addEventListener("close", function (event) {
      setState("disconnected");
      if (event.code === 4401) {
        return; // signed out: nothing to reconnect to
      }
      window.setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    });
  }

  window.QuantaRealtime = {
    send: function (message) {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify(message));
      }
    },
  };
  connect();
})();
