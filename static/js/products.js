/*
 * Product pages: the New product dialog (templates/products/_new_dialog.html) and the Invite team
 * member dialog (templates/products/_team_invite_dialog.html).
 *
 * Both forms post with htmx; a refused submission comes back as the form with its errors in place
 * (status 200), and the cursor goes to the first field with an error. A successful one answers
 * HX-Redirect (the new product, or the team page with the invitation listed).
 */
(function () {
  "use strict";

  var FORMS = "#product-form, #team-invite-form";

  document.addEventListener("htmx:load", function (event) {
    var element = event.detail && event.detail.elt;
    if (!element || !element.matches || !element.matches(FORMS)) {
      return;
    }
    var invalid = element.querySelector('[aria-invalid="true"]');
    if (invalid) {
      invalid.focus();
    }
  });
})();
