"""Console forms for products. They check the shape of the input; ``product_create`` decides the
rest (name and description rules) and its messages are shown on the field they name."""

from __future__ import annotations

from django import forms

from console.platforms import PLATFORMS
from products.services import MAX_NAME_LENGTH

MAX_DESCRIPTION_LENGTH = 1000
GENERATIONS = {4: "Gen 4", 3: "Gen 3", 2: "Gen 2", 1: "Gen 1", 0: "Other"}


def platform_choices() -> list:
    """Particle's platforms by name, newest generation first."""
    groups = [
        (
            label,
            [
                (str(p.id), p.name)
                for p in sorted(PLATFORMS.values(), key=lambda p: p.name.lower())
                if p.generation == generation
            ],
        )
        for generation, label in GENERATIONS.items()
    ]
    return [("", "Choose a platform…"), *(group for group in groups if group[1])]


class ProductCreateForm(forms.Form):
    # No length limits that refuse silently: product_create explains what is wrong.
    name = forms.CharField(
        label="Name",
        error_messages={"required": "A product needs a name."},
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "maxlength": MAX_NAME_LENGTH + 20,
                "placeholder": "e.g. Greenhouse sensors",
            }
        ),
    )
    platform_id = forms.TypedChoiceField(
        label="Platform",
        choices=platform_choices,
        coerce=int,
        help_text="The device type every device in the product runs on. It cannot be changed later.",
        error_messages={
            "required": "Choose the platform the product's devices run on.",
            "invalid_choice": "Choose one of the platforms in the list.",
        },
    )
    description = forms.CharField(
        required=False,
        label="Description",
        widget=forms.Textarea(
            attrs={"rows": 3, "maxlength": MAX_DESCRIPTION_LENGTH + 200, "placeholder": "What the fleet does"}
        ),
    )
