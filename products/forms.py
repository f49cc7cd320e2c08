"""Console forms for products and their teams. They check the shape of the input; the services
(``product_create``, ``team_invite``) decide the rest and their messages are shown on the field
they name."""

from __future__ import annotations

from django import forms

from console.permissions import Role
from console.platforms import PLATFORMS
from products.scopes import SCOPE_GROUPS, SCOPES
from products.services import MAX_NAME_LENGTH
from products.team import INVITABLE_ROLES, ROLE_NAMES

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


# What each invitable role may do, in plain words. console/permissions.py is the source of truth;
# tests/products/test_team_pages.py holds these sentences to it.
ROLE_DESCRIPTIONS = {
    Role.ADMINISTRATOR: "Everything but deleting the product or changing its billing: the team, "
    "settings, devices and firmware releases.",
    Role.DEVELOPER: "Uploads firmware, publishes events, calls functions, and manages groups and "
    "integrations. Cannot release firmware or change the team.",
    Role.SUPPORT: "Looks after customers and their devices: renames them, calls functions, locks "
    "firmware. Cannot upload firmware.",
    Role.VIEWER: "Sees devices, events, firmware and the team, and changes nothing.",
}


class TeamInviteForm(forms.Form):
    """Who to invite and as what. ``team_invite`` decides whether they can be (an account, not on
    the team yet, a free seat); its messages are shown on the field they name."""

    email = forms.EmailField(
        label="Email",
        max_length=254,
        help_text="The address they sign in with.",
        error_messages={
            "required": "Enter the email address of the person to invite.",
            "invalid": "Enter an email address, like name@example.com.",
        },
        widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "name@example.com"}),
    )
    role = forms.ChoiceField(
        label="Role",
        choices=[(role.value, ROLE_NAMES[role]) for role in INVITABLE_ROLES],
        initial=Role.DEVELOPER.value,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose the role to invite them as.",
            "invalid_choice": "Choose one of the roles in the list.",
        },
    )

    def clean_role(self) -> Role:
        return Role(self.cleaned_data["role"])

    def role_options(self) -> list[dict]:
        """The role radios with each role's name and what it may do, for the template."""
        return [
            {
                "radio": radio,
                "name": radio.choice_label,
                "description": ROLE_DESCRIPTIONS[Role(radio.data["value"])],
            }
            for radio in self["role"]
        ]


class ApiUserCreateForm(forms.Form):
    """A programmatic team member: a name people recognise, and what its token may do."""

    friendly_name = forms.CharField(
        label="Name",
        max_length=80,
        help_text="What uses it, e.g. “Data pipeline”.",
        error_messages={
            "required": "Give the API user a name, so the team knows what uses it.",
            "max_length": "Names are at most 80 characters.",
        },
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "Data pipeline"}),
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=[(name, scope.label) for name, scope in SCOPES.items()],
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Choose at least one scope: what the token may do.",
            "invalid_choice": "Choose scopes from the list.",
        },
    )

    def scope_groups(self) -> list[dict]:
        """The scope checkboxes grouped as products.scopes groups them, for the template."""
        boxes = {box.data["value"]: box for box in self["scopes"]}
        return [
            {"name": group, "boxes": [boxes[scope.name] for scope in scopes]}
            for group, scopes in SCOPE_GROUPS.items()
        ]
