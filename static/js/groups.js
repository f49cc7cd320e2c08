/*
 * A product's Groups page (templates/products/groups.html) and its New group and Edit group dialogs
 * (templates/products/groups_dialog.html). quanta.js opens and closes the dialogs; this keeps the
 * color choice in step with the color picker:
 *
 *   [data-group-custom-color]   the picker: changing it checks its "Custom color" radio
 *                               ([data-group-custom-radio]), so the form sends the picked color.
 *
 * Without this script the presets still work; a picked color counts once "Custom" is checked.
 */
(function () {
  "use strict";

  document.addEventListener("input", function (event) {
    var picker = event.target.closest && event.target.closest("[data-group-custom-color]");
    if (!picker) {
      return;
    }
    var radio = picker.closest("label").querySelector("[data-group-custom-radio]");
    if (radio) {
      radio.checked = true;
    }
  });

  // A click on the picker opens the browser's color chooser; check "Custom" at once too.
  document.addEventListener("click", function (event) {
    var picker = event.target.closest && event.target.closest("[data-group-custom-color]");
    if (picker) {
      var radio = picker.closest("label").querySelector("[data-group-custom-radio]");
      if (radio) {
        radio.checked = true;
      }
    }
  });
})();
