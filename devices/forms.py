"""Console forms for devices. They check the shape of the input; the services decide the rest
(name rules, ownership), and their messages are shown on the field they name."""

from __future__ import annotations

from django import forms

from devices.calls import MAX_ARGUMENT_BYTES
from devices.naming import MAX_NAME_LENGTH

DEVICE_ID_HELP = (
    "24 characters, 0–9 and a–f. With the device on USB, <code>particle identify</code> shows it."
)


class RenameForm(forms.Form):
    # No length or pattern limits here: device_rename explains what is wrong with a name.
    name = forms.CharField(
        required=False,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "maxlength": MAX_NAME_LENGTH + 20}
        ),
    )


class ClaimForm(forms.Form):
    device_id = forms.RegexField(
        regex=r"^\s*[0-9a-fA-F]{24}\s*$",
        label="Device ID",
        help_text=DEVICE_ID_HELP,
        error_messages={
            "required": "Enter the ID of the device to claim.",
            "invalid": "A device ID is 24 hexadecimal characters (0–9 and a–f), like 0123456789abcdef01234567.",
        },
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "autocapitalize": "off",
                "class": "mono",
                "placeholder": "e.g. 0123456789abcdef01234567",
            }
        ),
    )

    def clean_device_id(self) -> str:
        return self.cleaned_data["device_id"].strip().lower()


class NotesForm(forms.Form):
    notes = forms.CharField(
        required=False,
        strip=False,
        label="Notes",
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "Where it is, what it does, who to ask…"}),
    )


class CallForm(forms.Form):
    function = forms.CharField(max_length=64)
    # The byte limit is checked by device_function_call, which says how long the argument was.
    arg = forms.CharField(required=False, strip=False, max_length=MAX_ARGUMENT_BYTES * 4)


class VariableForm(forms.Form):
    name = forms.CharField(max_length=64)


class SignalForm(forms.Form):
    on = forms.TypedChoiceField(choices=[("1", "on"), ("0", "off")], coerce=lambda value: value == "1")


class ProductDeviceImportForm(forms.Form):
    # Empty files pass here: device_ids_from_file explains what a file of ids should hold.
    file = forms.FileField(
        allow_empty_file=True,
        error_messages={"required": "Choose a .txt file with one device ID per line."},
    )


class ProductDeviceRemoveForm(forms.Form):
    deny = forms.BooleanField(required=False)
