"""A product's Groups page (``/products/<product>/groups/``): its device groups with their colors,
descriptions and device counts, each linking to the Devices page filtered by it. Builders
(``group.manage``) also create, edit and delete groups, in dialogs that post plain forms: a refusal
re-renders the page with that dialog open and the message on its field.

The product is looked up through ``products.views._access`` with the action each view needs:
another team's product is a 404, an action the user's role does not allow is a 403 and changes
nothing. ``products.groups`` makes the decisions and words the refusals.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console.errors import ApplicationError, NotFound
from console.permissions import role_can
from products import groups
from products.models import (
    DEFAULT_GROUP_COLOR,
    GROUP_DESCRIPTION_MAX_LENGTH,
    GROUP_NAME_MAX_LENGTH,
    DeviceGroup,
)
from products.selectors import ProductAccess
from products.views import _access, _product_context

CUSTOM_COLOR = "custom"
CREATE_DIALOG = "group-create-dialog"


class GroupForm(forms.Form):
    """The shape of the input; ``products.groups`` checks the rest. ``color`` is a preset, or
    "custom" with the color picker's ``custom_color``."""

    name = forms.CharField(
        label="Name",
        error_messages={"required": "A group needs a name."},
        help_text=f"Lowercase letters, digits, - and _ (at most {GROUP_NAME_MAX_LENGTH}). The API and the CLI use it.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "autocapitalize": "off",
                "maxlength": GROUP_NAME_MAX_LENGTH + 20,
                "placeholder": "e.g. north-field",
            }
        ),
    )
    description = forms.CharField(
        required=False,
        label="Description",
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": GROUP_DESCRIPTION_MAX_LENGTH + 50}),
    )
    color = forms.CharField(required=False)
    custom_color = forms.CharField(required=False)

    def chosen_color(self) -> str:
        color = self.cleaned_data.get("color") or DEFAULT_GROUP_COLOR
        if color == CUSTOM_COLOR:
            return self.cleaned_data.get("custom_color") or DEFAULT_GROUP_COLOR
        return color

    def color_state(self) -> dict:
        """What the color picker shows: the chosen color, whether it is a preset, and the presets."""
        if self.is_bound:
            chosen = self.data.get("color") or DEFAULT_GROUP_COLOR
            custom = self.data.get("custom_color") or DEFAULT_GROUP_COLOR
        else:
            chosen = self.initial.get("color") or DEFAULT_GROUP_COLOR
            custom = chosen
        presets = [value for value, _ in groups.COLOR_PRESETS]
        is_custom = chosen == CUSTOM_COLOR or chosen not in presets
        if chosen not in presets and chosen != CUSTOM_COLOR:
            custom = chosen
        return {
            "presets": [
                {"value": value, "label": label, "checked": not is_custom and value == chosen}
                for value, label in groups.COLOR_PRESETS
            ],
            "custom": custom,
            "is_custom": is_custom,
        }


def _groups_url(product) -> str:
    return reverse("products:groups", args=[product.slug])


def _group_or_404(access: ProductAccess, name: str) -> DeviceGroup:
    try:
        return groups.group_get(product=access.product, name=name)
    except NotFound:
        raise Http404("No such group in this product.") from None


def _dialog_id(group: DeviceGroup) -> str:
    return f"group-edit-{group.pk}"


def _delete_message(group: DeviceGroup) -> str:
    count = group.device_count
    if not count:
        return "No devices are in it. This cannot be undone."
    devices = "1 device loses" if count == 1 else f"{count} devices lose"
    return f"{devices} this group; they stay in the product. This cannot be undone."


def _groups_context(
    request: HttpRequest,
    access: ProductAccess,
    *,
    create_form: GroupForm | None = None,
    edit_form: GroupForm | None = None,
    edit_group: DeviceGroup | None = None,
) -> dict:
    product = access.product
    can_manage = role_can(access.role, "group.manage")
    rows = list(groups.group_list(product=product))
    devices_url = reverse("product_devices:list", args=[product.slug])
    for group in rows:
        group.dialog_id = _dialog_id(group)
        group.devices_url = f"{devices_url}?group={group.name}"
        group.delete_message = _delete_message(group)
        if can_manage:
            group.open = edit_group is not None and group.pk == edit_group.pk
            if group.open and edit_form is not None:
                group.form = edit_form
            else:
                group.form = GroupForm(
                    initial={"name": group.name, "description": group.description, "color": group.color},
                    auto_id=f"{group.dialog_id}-%s",
                )
    return {
        **_product_context(request, access),
        "page_title": f"Groups · {product.name}",
        "groups": rows,
        "can_manage": can_manage,
        "create_form": create_form or GroupForm(auto_id=f"{CREATE_DIALOG}-%s"),
        "create_dialog": CREATE_DIALOG,
        "create_open": create_form is not None,
        "devices_url": devices_url,
    }


@require_GET
def group_list(request: HttpRequest, product: str) -> HttpResponse:
    access = _access(request, product, "device.read")
    return render(request, "products/groups.html", _groups_context(request, access))


@require_POST
def group_create(request: HttpRequest, product: str) -> HttpResponse:
    access = _access(request, product, "group.manage")
    form = GroupForm(request.POST, auto_id=f"{CREATE_DIALOG}-%s")
    if form.is_valid():
        try:
            group = groups.group_create(
                actor=request.user,
                product=access.product,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                color=form.chosen_color(),
                via="console",
            )
        except ApplicationError as refused:
            form.add_error(
                refused.field if refused.field in ("name", "description") else "color", refused.message
            )
        else:
            messages.success(request, f"Created the group {group.name}.")
            return redirect(_groups_url(access.product))
    context = _groups_context(request, access, create_form=form)
    return render(request, "products/groups.html", context)


@require_POST
def group_edit(request: HttpRequest, product: str, name: str) -> HttpResponse:
    access = _access(request, product, "group.manage")
    group = _group_or_404(access, name)
    form = GroupForm(request.POST, auto_id=f"{_dialog_id(group)}-%s")
    if form.is_valid():
        try:
            edited = groups.group_edit(
                actor=request.user,
                product=access.product,
                group=group,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                color=form.chosen_color(),
                via="console",
            )
        except ApplicationError as refused:
            form.add_error(
                refused.field if refused.field in ("name", "description") else "color", refused.message
            )
        else:
            renamed = f" (it was {name})" if edited.name != name else ""
            messages.success(request, f"Saved the group {edited.name}{renamed}.")
            return redirect(_groups_url(access.product))
    context = _groups_context(request, access, edit_form=form, edit_group=group)
    return render(request, "products/groups.html", context)


@require_POST
def group_delete(request: HttpRequest, product: str, name: str) -> HttpResponse:
    access = _access(request, product, "group.manage")
    group = _group_or_404(access, name)
    left = groups.group_delete(actor=request.user, product=access.product, group=group, via="console")
    lost = f" {left} device{'s' if left != 1 else ''} left it." if left else ""
    messages.success(request, f"Deleted the group {group.name}.{lost}")
    return redirect(_groups_url(access.product))
