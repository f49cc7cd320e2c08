/*
 * API reference page: renders the OpenAPI schema with Redoc (vendored by drf-spectacular-sidecar)
 * into #redoc, themed from the console's design tokens, and re-renders when the theme changes.
 */
(function () {
  "use strict";

  var container = document.getElementById("redoc");
  if (!container) {
    return;
  }

  function token(name) {
    return getComputedStyle(container).getPropertyValue(name).trim();
  }

  // Colour tokens are light-dark() expressions; resolve them to plain rgb() through a probe.
  var probe = null;
  function color(name) {
    if (!probe) {
      probe = document.createElement("span");
      probe.hidden = true;
      document.body.appendChild(probe);
    }
    probe.style.color = "var(" + name + ")";
    return getComputedStyle(probe).color;
  }

  function options() {
    var text = color("--text");
    var muted = color("--text-muted");
    var border = color("--border");
    var surface = color("--surface");
    var surface2 = color("--surface-2");
    var accent = color("--accent-text");
    // Redoc's right panel (request and response samples) is built for a dark background.
    var dark = document.documentElement.getAttribute("data-theme") === "dark";
    var panel = dark ? "#0e0e12" : "#1c1c24";
    var panelCode = dark ? "#08080b" : "#131319";
    var topbar = token("--topbar-height") || "56px";
    return {
      scrollYOffset: parseInt(topbar, 10) || 56,
      hideDownloadButton: false,
      expandResponses: "200,201",
      pathInMiddlePanel: false,
      nativeScrollbars: true,
      theme: {
        spacing: { unit: 5, sectionHorizontal: 32, sectionVertical: 24 },
        colors: {
          primary: { main: accent },
          text: { primary: text, secondary: muted },
          border: { dark: border, light: border },
          tonalOffset: 0.2
        },
        typography: {
          fontSize: "14px",
          lineHeight: "1.55",
          fontFamily: token("--font-sans"),
          headings: { fontFamily: token("--font-sans"), fontWeight: "600" },
          code: {
            fontFamily: token("--font-mono"),
            fontSize: "13px",
            color: text,
            backgroundColor: surface2
          },
          links: { color: accent, visited: accent, hover: accent }
        },
        sidebar: {
          width: "260px",
          backgroundColor: color("--sidebar-bg"),
          textColor: muted,
          activeTextColor: accent
        },
        rightPanel: {
          backgroundColor: panel,
          textColor: "#dcdce4",
          width: "40%"
        },
        codeBlock: { backgroundColor: panelCode },
        schema: {
          nestedBackground: surface2,
          linesColor: border,
          typeNameColor: muted,
          typeTitleColor: muted,
          requireLabelColor: color("--danger")
        },
        fab: { backgroundColor: surface, color: accent }
      }
    };
  }

  function render() {
    if (!window.Redoc) {
      container.textContent = "The API reference could not be loaded.";
      return;
    }
    window.Redoc.init(container.getAttribute("data-spec-url"), options(), container);
  }

  render();
  document.addEventListener("quanta:themechange", render);
})();
