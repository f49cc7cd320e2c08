/*
 * A product's firmware pages (templates/firmware/list.html and detail.html):
 *
 *   [data-firmware-upload]   the Upload dialog: a .bin dropped on the drop zone or picked, shown
 *                            with its size; its PRODUCT_VERSION (read from the module's suffix)
 *                            fills in an empty version. Checked against data-max-bytes, then
 *                            posted with XMLHttpRequest for the progress bar. The view answers
 *                            {ok: true, redirect} (the page it names shows the toast) or
 *                            {ok: false, errors} keyed by field ("__all__": the form's), and each
 *                            message goes under the field it names. Refusals are 200s, as the
 *                            console's htmx forms answer them.
 *   [data-firmware-menu]     a row's actions menu: an item that loads a dialog (htmx) closes the
 *                            menu first, through quanta.js's Escape handling so its state follows,
 *                            and the dialog gives focus back to the menu's button when it closes.
 */
(function () {
  "use strict";

  var doc = document;
  var NO_PRODUCT = 0xffff;
  var SUFFIX_TAIL = 44; // product id, product version, reserved, SHA-256, suffix size, CRC-32
  var DONE_PAUSE_MS = 600; // long enough to see "Done" before the page changes

  var formatBytes = function (bytes) {
    return window.Quanta.formatBytes(bytes);
  };

  function icon(name) {
    var meta = doc.querySelector('meta[name="quanta-icons"]');
    var ns = "http://www.w3.org/2000/svg";
    var svg = doc.createElementNS(ns, "svg");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var use = doc.createElementNS(ns, "use");
    use.setAttribute("href", (meta ? meta.getAttribute("content") : "") + "#" + name);
    svg.appendChild(use);
    return svg;
  }

  // The PRODUCT_VERSION in a module's suffix, counted from the end of the file (firmware/binary.py
  // reads the same fields); null when the build carries none or the tail is not a suffix.
  function productVersion(tail) {
    var view = new DataView(tail);
    var size = view.byteLength;
    if (size < SUFFIX_TAIL) {
      return null;
    }
    var suffixSize = view.getUint16(size - 6, true);
    if (suffixSize < 40) {
      return null;
    }
    var version = view.getUint16(size - 4 - 40 + 2, true);
    return version === 0 || version === NO_PRODUCT ? null : version;
  }

  /* Upload ------------------------------------------------------------------------------------ */

  function Uploader(dialog) {
    this.dialog = dialog;
    this.form = dialog.querySelector("[data-upload-form]");
    this.input = dialog.querySelector("[data-upload-input]");
    this.dropzone = dialog.querySelector("[data-upload-dropzone]");
    this.fileBox = dialog.querySelector("[data-upload-file]");
    this.progress = dialog.querySelector("[data-upload-progress]");
    this.progressBar = dialog.querySelector("[data-upload-progress-bar]");
    this.progressText = dialog.querySelector("[data-upload-progress-text]");
    this.progressPercent = dialog.querySelector("[data-upload-progress-percent]");
    this.alert = dialog.querySelector("[data-upload-error]");
    this.submit = dialog.querySelector("[data-upload-submit]");
    this.version = this.form.elements.namedItem("version");
    this.maxBytes = parseInt(dialog.getAttribute("data-max-bytes"), 10) || 0;
    this.file = null;
    this.request = null;
    this.filledVersion = null; // the version this script filled in from the binary
    this.bind();
  }

  Uploader.prototype.bind = function () {
    var self = this;
    window.Quanta.bindDropZone(this.dropzone, this.input, this.dialog, function (files) {
      if (files.length > 1) {
        self.choose(null);
        self.showErrors({ file: ["Drop one file: each upload is one version's binary."] });
      } else {
        self.choose(files[0] || null);
      }
    });
    this.dialog.querySelector("[data-upload-clear]").addEventListener("click", function () {
      self.choose(null);
      self.input.focus();
    });
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.upload();
    });
    this.dialog.addEventListener("close", function () {
      if (self.request) {
        self.request.abort();
      }
    });
  };

  // A file picked or dropped (or null to clear): shown with its size and the version it carries.
  Uploader.prototype.choose = function (file) {
    var self = this;
    this.file = file || null;
    this.clearErrors("file");
    if (!file) {
      this.input.value = "";
    }
    this.fileBox.hidden = !file;
    this.dropzone.classList.toggle("has-file", !!file);
    this.dialog.querySelector("[data-upload-file-version]").textContent = "";
    if (!file) {
      return;
    }
    this.dialog.querySelector("[data-upload-file-name]").textContent = file.name;
    this.dialog.querySelector("[data-upload-file-size]").textContent = formatBytes(file.size);
    var problem = this.check(file);
    if (problem) {
      this.showErrors({ file: [problem] });
      return;
    }
    if (!file.slice || !file.arrayBuffer) {
      return;
    }
    file
      .slice(Math.max(0, file.size - SUFFIX_TAIL))
      .arrayBuffer()
      .then(function (tail) {
        if (self.file !== file) {
          return; // another file was chosen meanwhile
        }
        var version = productVersion(tail);
        if (version === null) {
          return;
        }
        self.dialog.querySelector("[data-upload-file-version]").textContent = " · built as version " + version;
        var typed = self.version.value.trim();
        if (!typed || typed === self.filledVersion) {
          self.version.value = String(version);
          self.filledVersion = String(version);
        }
      })
      .catch(function () {
        // Unreadable here: the server reads it and says what is wrong.
      });
  };

  Uploader.prototype.check = function (file) {
    if (this.maxBytes && file.size > this.maxBytes) {
      return (
        file.name + " is " + file.size.toLocaleString("en-US") + " bytes; firmware binaries are at most " +
        this.maxBytes.toLocaleString("en-US") + " bytes."
      );
    }
    if (file.size === 0) {
      return file.name + " is empty.";
    }
    return null;
  };

  Uploader.prototype.fieldFor = function (name) {
    var input = name === "file" ? this.input : this.form.elements.namedItem(name);
    return input && input.closest ? { input: input, field: input.closest(".field") } : null;
  };

  // Removes the messages of one field (or of all, and the form's), server-rendered ones too.
  Uploader.prototype.clearErrors = function (name) {
    var self = this;
    var names = name ? [name] : ["file", "version", "title", "description"];
    names.forEach(function (each) {
      var target = self.fieldFor(each);
      if (!target || !target.field) {
        return;
      }
      target.field.classList.remove("field-invalid");
      target.input.removeAttribute("aria-invalid");
      var list = target.field.querySelector(".field-errors");
      if (list) {
        list.remove();
      }
      var described = (target.input.getAttribute("aria-describedby") || "")
        .split(/\s+/)
        .filter(function (id) {
          return id && id !== target.input.id + "_error";
        });
      if (described.length) {
        target.input.setAttribute("aria-describedby", described.join(" "));
      } else {
        target.input.removeAttribute("aria-describedby");
      }
    });
    if (!name) {
      this.alert.hidden = true;
    }
  };

  Uploader.prototype.showErrors = function (errors) {
    var self = this;
    var first = null;
    var general = [];
    Object.keys(errors).forEach(function (name) {
      var target = name === "__all__" ? null : self.fieldFor(name);
      if (!target || !target.field) {
        general = general.concat(errors[name]);
        return;
      }
      self.clearErrors(name);
      var list = doc.createElement("ul");
      list.className = "field-errors";
      list.id = target.input.id + "_error";
      errors[name].forEach(function (message) {
        var item = doc.createElement("li");
        item.appendChild(icon("alert"));
        var text = doc.createElement("span");
        text.textContent = message;
        item.appendChild(text);
        list.appendChild(item);
      });
      target.field.appendChild(list);
      target.field.classList.add("field-invalid");
      target.input.setAttribute("aria-invalid", "true");
      var described = target.input.getAttribute("aria-describedby");
      target.input.setAttribute("aria-describedby", (described ? described + " " : "") + list.id);
      first = first || target.input;
    });
    if (general.length) {
      var body = this.alert.querySelector("[data-upload-error-text]");
      body.textContent = "";
      general.forEach(function (message) {
        var paragraph = doc.createElement("p");
        paragraph.textContent = message;
        body.appendChild(paragraph);
      });
      this.alert.hidden = false;
    }
    if (first) {
      first.focus();
    }
  };

  Uploader.prototype.setBusy = function (busy) {
    this.submit.disabled = busy;
    this.submit.classList.toggle("is-busy", busy);
    this.input.disabled = busy;
    this.dropzone.classList.toggle("is-disabled", busy);
    this.dialog.querySelector("[data-upload-clear]").disabled = busy;
  };

  // A percentage of the bytes sent; null while the server checks the binary; "done" when stored.
  Uploader.prototype.setProgress = function (percent) {
    this.progress.hidden = false;
    this.progress.classList.toggle("is-done", percent === "done");
    if (percent === null) {
      this.progressBar.removeAttribute("value");
      this.progressText.textContent = "Checking the binary…";
      this.progressPercent.textContent = "";
      return;
    }
    if (percent === "done") {
      this.progressBar.value = 100;
      this.progressText.textContent = "Uploaded " + (this.file ? this.file.name : "");
      this.progressPercent.textContent = "Done";
      return;
    }
    this.progressBar.value = percent;
    this.progressText.textContent = "Uploading " + (this.file ? this.file.name : "") + "…";
    this.progressPercent.textContent = percent + "%";
  };

  Uploader.prototype.fail = function (errors) {
    this.request = null;
    this.setBusy(false);
    this.progress.hidden = true;
    this.showErrors(errors);
  };

  Uploader.prototype.upload = function () {
    var self = this;
    if (this.request) {
      return;
    }
    this.clearErrors();
    if (!this.file) {
      this.showErrors({ file: ["Choose the binary to upload: the .bin file your build made."] });
      return;
    }
    var problem = this.check(this.file);
    if (problem) {
      this.showErrors({ file: [problem] });
      return;
    }
    var data = new FormData(this.form);
    data.set("file", this.file, this.file.name);
    var request = new XMLHttpRequest();
    this.request = request;
    request.open("POST", this.form.getAttribute("action"));
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) {
        self.setProgress(Math.round((event.loaded / event.total) * 100));
      }
    });
    request.upload.addEventListener("load", function () {
      self.setProgress(null);
    });
    request.addEventListener("load", function () {
      var body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch (error) {
        body = null;
      }
      if (body && body.ok) {
        self.request = null;
        self.setProgress("done");
        window.setTimeout(function () {
          window.location.assign(body.redirect);
        }, DONE_PAUSE_MS);
      } else if (body && body.errors) {
        self.fail(body.errors);
      } else if (request.status === 403) {
        self.fail({ __all__: ["Your session expired, or your role no longer allows uploading firmware. Reload the page and try again."] });
      } else if (request.status === 413) {
        self.fail({ file: ["The file is too large for the server."] });
      } else {
        self.fail({ __all__: ["Something went wrong (" + request.status + "). Try again."] });
      }
    });
    request.addEventListener("error", function () {
      self.fail({ __all__: ["Could not reach the server. Check your connection and try again."] });
    });
    request.addEventListener("abort", function () {
      self.request = null;
      self.setBusy(false);
      self.progress.hidden = true;
    });
    this.setBusy(true);
    this.setProgress(0);
    request.send(data);
  };

  /* Row menus ------------------------------------------------------------------------------------ */

  doc.addEventListener("click", function (event) {
    var item = event.target.closest && event.target.closest("[data-firmware-menu] [role='menuitem'][hx-get]");
    if (item) {
      item.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    }
  });

  function start() {
    var dialog = doc.querySelector("[data-firmware-upload]");
    if (dialog && !dialog._uploader) {
      dialog._uploader = new Uploader(dialog);
    }
  }

  if (doc.readyState === "loading") {
    doc.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
