"""The invitations waiting for the signed-in user: accept or decline each."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from products import selectors, services
from products.models import Invitation
from products.team import ROLE_NAMES


def invitations_landing(user) -> str | None:
    """After login, someone with invitations waiting answers them first."""
    return reverse("invitations:list") if selectors.invitations_for_user(user=user).exists() else None


@require_GET
def invitation_list(request: HttpRequest) -> HttpResponse:
    invitations = [
        {"invitation": invitation, "role_name": ROLE_NAMES[invitation.role]}
        for invitation in selectors.invitations_for_user(user=request.user)
    ]
    return render(request, "products/invitations.html", {"invitations": invitations})


@require_POST
def invitation_accept(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(
        Invitation.objects.select_related("product"), pk=invitation_id, user=request.user
    )
    services.invitation_accept(user=request.user, invitation=invitation)
    messages.success(request, f"You joined the {invitation.product.name} team.")
    return redirect("invitations:list")


@require_POST
def invitation_decline(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(
        Invitation.objects.select_related("product"), pk=invitation_id, user=request.user
    )
    services.invitation_decline(user=request.user, invitation=invitation)
    messages.info(request, f"You declined the invitation to {invitation.product.name}.")
    return redirect("invitations:list")
