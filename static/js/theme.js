/*
 * Quanta theme bootstrap. Loaded in <head> without defer so the page is painted in the right
 * theme: <html data-theme> is the stored choice (localStorage) or else the system preference,
 * which it keeps following until the person picks a theme with the toggle.
 */
(function () {
  "use strict";

  var KEY = "quanta-theme";
  var root = document.documentElement;
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function stored() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "light" || value === "dark" ? value : null;
    } catch (error) {
      return null;
    }
  }

  function system() {
    return media && media.matches ? "dark" : "light";
  }

  function current() {
    return stored() || system();
  }

  function apply(theme) {
    var previous = root.getAttribute("data-theme");
    root.setAttribute("data-theme", theme);
    if (previous && previous !== theme) {
      document.dispatchEvent(new CustomEvent("quanta:themechange", { detail: { theme: theme } }));
    }
  }

  function set(theme) {
    try {
      if (theme === "light" || theme === "dark") {
        window.localStorage.setItem(KEY, theme);
      } else {
        window.localStorage.removeItem(KEY);
      }
    } catch (error) {
      /* Storage can be unavailable (private mode); the choice then lasts for this page only. */
    }
    apply(theme === "light" || theme === "dark" ? theme : system());
  }

  function toggle() {
    set(current() === "dark" ? "light" : "dark");
  }

  apply(current());

  if (media) {
    var onSystemChange = function () {
      if (!stored()) {
        apply(system());
      }
    };
    if (media.addEventListener) {
      media.addEventListener("change", onSystemChange);
    } else if (media.addListener) {
      media.addListener(onSystemChange);
    }
  }

  window.addEventListener("storage", function (event) {
    if (event.key === KEY) {
      apply(current());
    }
  });

  window.QuantaTheme = { current: current, set: set, toggle: toggle };
})();
