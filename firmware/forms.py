"""Console forms for a product's firmware. They carry the input's shape and render the fields; the
services (``firmware_upload``, ``firmware_update``) check the values and word
the refusals, which the views put on the field they name."""

from __future__ import annotations

from django import forms

from firmware.models import DESCRIPTION_MAX_LENGTH, MAX_FIRMWARE_VERSION, TITLE_MAX_LENGTH

# What the services name in ApplicationError.field, mapped to these forms' fields (None: the form's).
UPLOAD_FIELDS = {"file": "file", "version": "version", "title": "title", "description": "description"}
EDIT_FIELDS = {"title": "title", "description": "description"}


class _TextFields(forms.Form):
    # No length limits that refuse silently: the services say what is wrong.
    title = forms.CharField(
        required=False,
        label="Title",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "maxlength": TITLE_MAX_LENGTH + 20,
                "placeholder": "e.g. Faster sensor reads",
            }
        ),
    )
    description = forms.CharField(
        required=False,
        label="Description",
        help_text="What changed, for your team: shown with the version.",
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": DESCRIPTION_MAX_LENGTH + 50}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Required for people (the label shows no "(optional)"), checked by the service.
        self.fields["title"].widget.attrs["aria-required"] = "true"


class FirmwareUploadForm(_TextFields):
    version = forms.CharField(
        required=False,
        label="Version",
        help_text="The <code>PRODUCT_VERSION</code> the binary was built with: a whole number, higher than the last.",
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "off",
                "maxlength": len(str(MAX_FIRMWARE_VERSION)) + 5,
                "placeholder": "e.g. 4",
                "aria-required": "true",
            }
        ),
    )
    file = forms.FileField(required=False, label="Binary")

    field_order = ["version", "title", "description", "file"]


class FirmwareEditForm(_TextFields):
    pass
