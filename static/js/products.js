/*
 * The products list: the New product dialog (templates/products/_new_dialog.html).
 *
 * The dialog's form posts with htmx; a failed creation comes back as the form with its errors in
 * place (status 200), and the cursor goes to the first field with an error. A successful one
 * answers HX-Redirect to the new product.
 */
(function () {
  "use strict";

  document.addEventListener("htmx:load", function (event) {
    var element = event.detail && event.detail.elt;
    if (!element || !element.matches || !element.matches("#product-form")) {
      return;
    }
    var invalid = element.querySelector('[aria-invalid="true"]');
    if (invalid) {
      invalid.focus();
    }
  });
})();
