/*
 * A product's Devices page (templates/devices/product_list.html). Live status, last-heard times and
 * the search are devices.js's; this adds:
 *
 *   [data-device-action]        a row's Deny or Remove button: points the dialog it opens
 *                               (data-open-dialog) at that device; data-device-subject names it
 *   [data-bulk-bar]             the bulk bar (a form): shown while rows are checked
 *                               ([data-bulk-device], whose form attribute names it), with their
 *                               count; [data-bulk-all] checks every row of the page,
 *                               [data-bulk-clear] none. Its Add to group and Remove from group
 *                               dialogs submit it too (their fields name it with form=).
 *   [data-import-dialog]        the Import devices dialog: a .txt file dropped on the drop zone or
 *                               picked, checked against data-max-bytes, uploaded with a progress
 *                               bar (XMLHttpRequest, for upload progress), then the server's
 *                               report: a count per category, the first IDs of each, and each
 *                               category's IDs as a .txt download built here from the JSON.
 *
 * The import endpoint answers {ok: true, result} with the API's categories, or {ok: false, error}.
 * Closing the dialog after an import that added devices reloads the list.
 */
(function () {
  "use strict";

  var doc = document;
  var SHOWN_IDS = 5;
  var CATEGORIES = [
    {
      key: "added",
      field: "updatedDeviceIds",
      label: "Added",
      icon: "check",
      tone: "success",
      text: "Joined the product. Devices that were waiting in quarantine are approved."
    },
    {
      key: "existing",
      field: "existingDeviceIds",
      label: "Already in the product",
      icon: "layers",
      tone: "neutral",
      text: "Nothing to do: they were in the product already."
    },
    {
      key: "refused",
      field: "nonmemberDeviceIds",
      label: "Refused: claimed outside your team",
      icon: "lock",
      tone: "warning",
      text: "Claimed by someone who is not on this product's team, or in another product. Their owner has to release them first."
    },
    {
      key: "invalid",
      field: "invalidDeviceIds",
      label: "Invalid",
      icon: "alert",
      tone: "danger",
      text: "Not device IDs (24 characters, 0–9 and a–f), or not provisioned on this cloud."
    }
  ];

  /* Helpers ---------------------------------------------------------------------------------- */

  var formatBytes = function (bytes) {
    return window.Quanta.formatBytes(bytes);
  };

  function plural(count, one, many) {
    return count.toLocaleString("en-US") + " " + (count === 1 ? one : many);
  }

  function element(tag, className, text) {
    var el = doc.createElement(tag);
    if (className) {
      el.className = className;
    }
    if (text !== undefined) {
      el.textContent = text;
    }
    return el;
  }

  function icon(name, fromPage) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = doc.createElementNS(ns, "svg");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var use = doc.createElementNS(ns, "use");
    var meta = doc.querySelector('meta[name="quanta-icons"]');
    use.setAttribute("href", fromPage ? "#i-" + name : (meta ? meta.getAttribute("content") : "") + "#" + name);
    svg.appendChild(use);
    return svg;
  }

  /* Deny and Remove: one dialog each, pointed at the row's device ----------------------------- */

  doc.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-device-action]");
    if (!button) {
      return;
    }
    // quanta.js opens the dialog (data-open-dialog); point its form at this device.
    var dialog = doc.getElementById(button.getAttribute("data-open-dialog"));
    if (!dialog) {
      return;
    }
    var form = dialog.querySelector("[data-device-action-form]");
    form.setAttribute("action", button.getAttribute("data-device-action"));
    form.reset();
    dialog.querySelector("[data-device-action-subject]").textContent = button.getAttribute("data-device-subject");
    // Back to the list as it is now (the search and pages change the address without a reload).
    form.querySelector("[data-device-action-next]").value = window.location.pathname + window.location.search;
  });

  /* Bulk changes: checked rows, the bar and its dialogs ----------------------------------------- */

  function bulkBoxes() {
    return Array.prototype.slice.call(doc.querySelectorAll("[data-bulk-device]"));
  }

  function bulkUpdate() {
    var bar = doc.querySelector("[data-bulk-bar]");
    if (!bar) {
      return;
    }
    var boxes = bulkBoxes();
    var checked = boxes.filter(function (box) {
      return box.checked;
    }).length;
    var text = plural(checked, "device", "devices") + " selected";
    bar.hidden = checked === 0;
    bar.querySelector("[data-bulk-count]").textContent = checked ? text : "No devices selected";
    Array.prototype.forEach.call(doc.querySelectorAll("[data-bulk-dialog-count]"), function (el) {
      el.textContent = checked === 1 ? "The selected device" : "The " + plural(checked, "selected device", "selected devices");
    });
    var all = doc.querySelector("[data-bulk-all]");
    if (all) {
      all.checked = checked > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
    Array.prototype.forEach.call(boxes, function (box) {
      var row = box.closest("tr");
      if (row) {
        row.classList.toggle("is-selected", box.checked);
      }
    });
    // Back to the list as it is now (the search and pages change the address without a reload).
    var next = bar.querySelector("[data-bulk-next]");
    if (next) {
      next.value = window.location.pathname + window.location.search;
    }
  }

  doc.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-bulk-all]")) {
      bulkBoxes().forEach(function (box) {
        box.checked = target.checked;
      });
      bulkUpdate();
    } else if (target.matches && target.matches("[data-bulk-device]")) {
      bulkUpdate();
    }
  });

  doc.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-bulk-clear]")) {
      bulkBoxes().forEach(function (box) {
        box.checked = false;
      });
      bulkUpdate();
    }
  });

  // Enter in the group name adds to the group (the bar's first button would mark development).
  doc.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !event.target.matches || !event.target.matches("#bulk-add-group")) {
      return;
    }
    event.preventDefault();
    var submit = doc.querySelector("[data-bulk-add-submit]");
    if (submit) {
      submit.click();
    }
  });

  // A new page of rows (search, sort, pages) starts with nothing checked.
  doc.addEventListener("htmx:afterSwap", bulkUpdate);
  doc.addEventListener("htmx:historyRestore", bulkUpdate);
  window.addEventListener("pageshow", bulkUpdate);

  /* Import ----------------------------------------------------------------------------------- */

  function Importer(dialog) {
    this.dialog = dialog;
    this.form = dialog.querySelector("[data-import-form]");
    this.input = dialog.querySelector("[data-import-input]");
    this.dropzone = dialog.querySelector("[data-import-dropzone]");
    this.fileBox = dialog.querySelector("[data-import-file]");
    this.progress = dialog.querySelector("[data-import-progress]");
    this.progressBar = dialog.querySelector("[data-import-progress-bar]");
    this.progressText = dialog.querySelector("[data-import-progress-text]");
    this.progressPercent = dialog.querySelector("[data-import-progress-percent]");
    this.error = dialog.querySelector("[data-import-error]");
    this.report = dialog.querySelector("[data-import-report]");
    this.intro = dialog.querySelector("[data-import-intro]");
    this.submit = dialog.querySelector("[data-import-submit]");
    this.maxBytes = parseInt(dialog.getAttribute("data-max-bytes"), 10) || 0;
    this.maxIds = dialog.getAttribute("data-max-ids");
    this.platform = dialog.getAttribute("data-platform");
    this.product = dialog.getAttribute("data-product");
    this.file = null;
    this.request = null;
    this.changed = false; // an import added devices: the list behind is stale
    this.urls = [];
    this.bind();
  }

  Importer.prototype.bind = function () {
    var self = this;
    window.Quanta.bindDropZone(this.dropzone, this.input, this.dialog, function (files) {
      if (files.length > 1) {
        self.choose(null);
        self.showError("Drop one file at a time: each import reads one file.");
        return;
      }
      self.choose(files[0] || null);
    });
    this.dialog.querySelector("[data-import-clear]").addEventListener("click", function () {
      self.choose(null);
      self.input.focus();
    });
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.upload();
    });
    this.dialog.querySelector("[data-import-again]").addEventListener("click", function () {
      self.reset();
      self.input.focus();
    });
    this.dialog.addEventListener("close", function () {
      if (self.request) {
        self.request.abort();
      }
      if (self.changed) {
        window.location.reload();
        return;
      }
      self.reset();
    });
  };

  Importer.prototype.showError = function (message) {
    this.dialog.querySelector("[data-import-error-text]").textContent = message;
    this.error.hidden = false;
  };

  Importer.prototype.hideError = function () {
    this.error.hidden = true;
  };

  // A file picked or dropped (or null to clear): shown with its size, and checked before upload.
  Importer.prototype.choose = function (file) {
    this.file = file || null;
    this.hideError();
    if (!file) {
      this.input.value = "";
    }
    this.fileBox.hidden = !file;
    this.dropzone.classList.toggle("has-file", !!file);
    if (file) {
      this.dialog.querySelector("[data-import-file-name]").textContent = file.name;
      this.dialog.querySelector("[data-import-file-size]").textContent = formatBytes(file.size);
    }
    var problem = file ? this.check(file) : null;
    if (problem) {
      this.showError(problem);
    }
    this.fileBox.classList.toggle("is-invalid", !!problem);
    this.submit.disabled = !file || !!problem;
  };

  Importer.prototype.check = function (file) {
    if (this.maxBytes && file.size > this.maxBytes) {
      var size = formatBytes(file.size);
      var limit = formatBytes(this.maxBytes);
      if (size === limit) {
        // Just over: rounded, both would read the same.
        size = file.size.toLocaleString("en-US") + " bytes";
        limit = this.maxBytes.toLocaleString("en-US") + " bytes";
      }
      return (
        file.name + " is " + size + "; imports take files of at most " + limit +
        " (" + this.maxIds + " device IDs). Split it into several files."
      );
    }
    if (file.size === 0) {
      return file.name + " is empty. Put one device ID on each line.";
    }
    return null;
  };

  Importer.prototype.setBusy = function (busy) {
    this.submit.disabled = busy || !this.file;
    this.submit.classList.toggle("is-busy", busy);
    this.input.disabled = busy;
    this.dropzone.classList.toggle("is-disabled", busy);
    this.dialog.querySelector("[data-import-clear]").disabled = busy;
  };

  Importer.prototype.setProgress = function (percent) {
    this.progress.hidden = false;
    if (percent === null) {
      this.progressBar.removeAttribute("value"); // indeterminate: the server is working
      this.progressText.textContent = "Checking the device IDs…";
      this.progressPercent.textContent = "";
      return;
    }
    this.progressBar.value = percent;
    this.progressText.textContent = "Uploading " + (this.file ? this.file.name : "") + "…";
    this.progressPercent.textContent = percent + "%";
  };

  Importer.prototype.upload = function () {
    var self = this;
    if (!this.file || this.request) {
      return;
    }
    var problem = this.check(this.file);
    if (problem) {
      this.showError(problem);
      return;
    }
    this.hideError();
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
      self.request = null;
      self.setBusy(false);
      self.progress.hidden = true;
      var body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch (error) {
        body = null;
      }
      if (body && body.ok && body.result) {
        self.showReport(body.result);
      } else if (body && body.error) {
        self.showError(body.error);
      } else if (request.status === 403) {
        self.showError("Your session expired, or your role no longer allows importing devices. Reload the page and try again.");
      } else if (request.status === 413) {
        self.showError("The file is too large for the server. Split it into several files.");
      } else {
        self.showError("Something went wrong (" + request.status + "). Try again.");
      }
    });
    request.addEventListener("error", function () {
      self.request = null;
      self.setBusy(false);
      self.progress.hidden = true;
      self.showError("Could not reach the server. Check your connection and try again.");
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

  Importer.prototype.downloadLink = function (category, ids) {
    var blob = new Blob([ids.join("\n") + "\n"], { type: "text/plain" });
    var url = URL.createObjectURL(blob);
    this.urls.push(url);
    var link = element("a", "btn btn-ghost btn-sm import-download");
    link.href = url;
    link.download = this.product + "-" + category.key + "-device-ids.txt";
    link.title = "Download the IDs as a .txt file";
    link.appendChild(icon("download", true));
    link.appendChild(element("span", "import-download-text", "Download .txt"));
    var hidden = element("span", "visually-hidden", " (" + category.label + ", " + plural(ids.length, "ID", "IDs") + ")");
    link.appendChild(hidden);
    return link;
  };

  Importer.prototype.showReport = function (result) {
    var self = this;
    var added = (result.updatedDeviceIds || []).length;
    var total = 0;
    CATEGORIES.forEach(function (category) {
      total += (result[category.field] || []).length;
    });
    this.changed = this.changed || added > 0;

    this.dialog.querySelector("[data-import-report-title]").textContent = added
      ? "Added " + plural(added, "device", "devices")
      : "No devices were added";
    this.dialog.querySelector("[data-import-report-text]").textContent =
      (this.file ? this.file.name + ": " : "") + plural(total, "device ID", "device IDs") + " read.";
    var reportIcon = this.dialog.querySelector("[data-import-report-icon]");
    reportIcon.textContent = "";
    reportIcon.appendChild(icon(added ? "check" : "info", false));
    this.dialog.querySelector("[data-import-report-head]").classList.toggle("is-success", added > 0);

    var list = this.dialog.querySelector("[data-import-categories]");
    list.textContent = "";
    CATEGORIES.forEach(function (category) {
      var ids = result[category.field] || [];
      var item = element("li", "import-category import-category-" + category.tone);
      item.setAttribute("data-import-category", category.key);
      if (!ids.length) {
        item.classList.add("is-empty");
      }
      var head = element("div", "import-category-head");
      var badge = element("span", "import-category-icon");
      badge.appendChild(icon(category.icon, false));
      head.appendChild(badge);
      var title = element("span", "import-category-title");
      title.appendChild(element("span", "import-category-label", category.label));
      title.appendChild(element("span", "import-category-count", ids.length.toLocaleString("en-US")));
      head.appendChild(title);
      if (ids.length) {
        head.appendChild(self.downloadLink(category, ids));
      }
      item.appendChild(head);
      if (ids.length) {
        item.appendChild(element("p", "import-category-text", category.text));
        var otherPlatform = category.key === "invalid" ? (result.otherPlatformDeviceIds || []).length : 0;
        if (otherPlatform) {
          var which =
            otherPlatform === ids.length
              ? ids.length === 1 ? "It is a device of" : "All of them are devices of"
              : otherPlatform + (otherPlatform === 1 ? " of them is a device of" : " of them are devices of");
          item.appendChild(
            element(
              "p",
              "import-category-note",
              which + " another platform: this product takes only " + self.platform + " devices."
            )
          );
        }
        var shown = element("ul", "import-ids");
        shown.setAttribute("role", "list");
        ids.slice(0, SHOWN_IDS).forEach(function (id) {
          var entry = element("li");
          entry.appendChild(element("code", "", id));
          shown.appendChild(entry);
        });
        if (ids.length > SHOWN_IDS) {
          shown.appendChild(element("li", "import-ids-more", "and " + (ids.length - SHOWN_IDS).toLocaleString("en-US") + " more"));
        }
        item.appendChild(shown);
      }
      list.appendChild(item);
    });

    this.form.hidden = true;
    this.intro.hidden = true;
    this.report.hidden = false;
    this.dialog.querySelector('[data-import-actions="choose"]').hidden = true;
    this.dialog.querySelector('[data-import-actions="report"]').hidden = false;
    this.report.focus();
  };

  Importer.prototype.reset = function () {
    this.urls.forEach(function (url) {
      URL.revokeObjectURL(url);
    });
    this.urls = [];
    this.choose(null);
    this.progress.hidden = true;
    this.form.hidden = false;
    this.intro.hidden = false;
    this.report.hidden = true;
    this.dialog.querySelector("[data-import-categories]").textContent = "";
    this.dialog.querySelector('[data-import-actions="choose"]').hidden = false;
    this.dialog.querySelector('[data-import-actions="report"]').hidden = true;
  };

  function start() {
    bulkUpdate();
    var dialog = doc.querySelector("[data-import-dialog]");
    if (dialog) {
      dialog._importer = new Importer(dialog);
    }
  }

  if (doc.readyState === "loading") {
    doc.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
