"""A product's Team page: its members and pending invitations for everyone on the team; inviting,
cancelling invitations and removing members for managers (``team.manage``); leaving for everyone
but the owner.

The product is looked up through ``products.views._access`` with the action each view needs: another
team's product is a 404, an action the user's role does not allow is a 403 and changes nothing.
The services (``products.services``) make the decisions and word the refusals.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.errors import ApplicationError, NotFound, PermissionDenied
from console.permissions import Role, role_can
from products import selectors, services
from products.forms import ApiUserCreateForm, TeamInviteForm
from products.limits import FREE_TEAM_MEMBER_LIMIT
from products.models import ApiUser, Invitation, Membership
from products.scopes import SCOPES
from products.selectors import ProductAccess
from products.team import ROLE_NAMES
from products.views import INVALID, _access, _is_htmx, _product_context

# team_invite names the API's field ("username"); the form's is "email".
_INVITE_FIELDS = {"username": "email", "role": "role"}


def _team_url(product) -> str:
    return reverse("products:team", args=[product.slug])


def _team_context(
    request: HttpRequest,
    access: ProductAccess,
    form: TeamInviteForm | None = None,
    api_user_form: ApiUserCreateForm | None = None,
) -> dict:
    product = access.product
    members = list(selectors.team_members(product=product))
    invitations = list(selectors.team_invitations(product=product))
    api_users = list(selectors.api_users(product=product))
    for api_user in api_users:
        api_user.scope_labels = [(name, SCOPES[name].label) for name in api_user.scopes if name in SCOPES]
    for member in members:
        member.role_name = ROLE_NAMES[Role(member.role)]
        member.is_you = member.user_id == request.user.pk
        member.is_owner = member.role == Role.OWNER
    for invitation in invitations:
        invitation.role_name = ROLE_NAMES[Role(invitation.role)]
    seats_used = len(members) + len(invitations)
    return {
        **_product_context(request, access),
        "page_title": f"Team · {product.name}",
        "role_label": ROLE_NAMES[access.role],
        "members": members,
        "invitations": invitations,
        "can_manage": role_can(access.role, "team.manage"),
        "is_owner": access.role == Role.OWNER,
        "seats_used": seats_used,
        "seats_limit": FREE_TEAM_MEMBER_LIMIT,
        "seats_full": seats_used >= FREE_TEAM_MEMBER_LIMIT,
        # One slot per seat for the seats bar: taken by a member, held by an invitation, or free.
        "seat_slots": ["member"] * len(members)
        + ["invited"] * len(invitations)
        + ["free"] * max(0, FREE_TEAM_MEMBER_LIMIT - seats_used),
        "invite_form": form or TeamInviteForm(),
        "open_invite_dialog": form is not None,
        "api_users": api_users,
        "api_user_form": api_user_form or ApiUserCreateForm(),
        "open_api_user_dialog": api_user_form is not None,
    }


@require_GET
def team(request: HttpRequest, product: str) -> HttpResponse:
    access = _access(request, product, "team.read")
    return render(request, "products/team.html", _team_context(request, access))


@require_http_methods(["GET", "POST"])
def team_invite(request: HttpRequest, product: str) -> HttpResponse:
    """The Invite dialog posts here. htmx gets the form back with its errors in place (200, with
    ``X-Quanta-Error``), or a redirect to the team page; without htmx, errors re-render the page
    with the dialog open. A GET is the team page."""
    access = _access(request, product, "team.manage")
    if request.method == "GET":
        return redirect(_team_url(access.product))
    form = TeamInviteForm(request.POST)
    error = INVALID
    invitation: Invitation | None = None
    if form.is_valid():
        try:
            invitation = services.team_invite(
                actor=request.user,
                product=access.product,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                via="console",
            )
        except ApplicationError as refused:
            error = refused.error
            form.add_error(_INVITE_FIELDS.get(refused.field or ""), refused.message)
    if invitation is not None:
        messages.success(
            request,
            f"Invited {invitation.user.email} as {ROLE_NAMES[Role(invitation.role)]}. "
            "They have been emailed, and join the team when they accept.",
        )
        url = _team_url(access.product)
        if _is_htmx(request):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return redirect(url)
    if _is_htmx(request):
        context = {**_product_context(request, access), "invite_form": form}
        response = render(request, "products/_team_invite_dialog.html#invite_form", context)
        response["X-Quanta-Error"] = error
        return response
    return render(request, "products/team.html", _team_context(request, access, form))


@require_POST
def team_invitation_cancel(request: HttpRequest, product: str, invitation_id: int) -> HttpResponse:
    access = _access(request, product, "team.manage")
    invitation = (
        Invitation.objects.select_related("user", "product")
        .filter(pk=invitation_id, product=access.product)
        .first()
    )
    if invitation is None:
        raise Http404("No such invitation on this product's team.")
    services.invitation_cancel(actor=request.user, invitation=invitation, via="console")
    messages.success(request, f"Cancelled the invitation to {invitation.user.email}.")
    return redirect(_team_url(access.product))


def _remove(request: HttpRequest, access: ProductAccess, member) -> None:
    try:
        services.member_remove(
            actor=request.user, actor_role=access.role, product=access.product, member=member, via="console"
        )
    except NotFound:
        raise Http404("No such member on this product's team.") from None
    except PermissionDenied as denied:
        raise DjangoPermissionDenied(denied.message) from None


def _left(request: HttpRequest, access: ProductAccess) -> HttpResponse:
    messages.success(request, f"You left the {access.product.name} team.")
    return redirect("products:list")


@require_POST
def team_member_remove(request: HttpRequest, product: str, user_id: int) -> HttpResponse:
    access = _access(request, product, "team.manage")
    membership = (
        Membership.objects.select_related("user").filter(product=access.product, user_id=user_id).first()
    )
    if membership is None:
        raise Http404("No such member on this product's team.")
    _remove(request, access, membership.user)
    if membership.user_id == request.user.pk:
        return _left(request, access)
    messages.success(request, f"Removed {membership.user.email} from the team.")
    return redirect(_team_url(access.product))


@require_POST
def team_leave(request: HttpRequest, product: str) -> HttpResponse:
    access = _access(request, product, "team.read")
    _remove(request, access, request.user)
    return _left(request, access)


# --- API users ------------------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def team_api_user_create(request: HttpRequest, product: str) -> HttpResponse:
    """The New API user dialog posts here. Its token is shown in the answer and never again: htmx
    gets it in place of the form; without htmx, the team page shows it. A GET is the team page."""
    access = _access(request, product, "team.manage")
    if request.method == "GET":
        return redirect(_team_url(access.product))
    form = ApiUserCreateForm(request.POST)
    error = INVALID
    created = None
    if form.is_valid():
        try:
            created = services.api_user_create(
                actor=request.user,
                product=access.product,
                friendly_name=form.cleaned_data["friendly_name"],
                scopes=form.cleaned_data["scopes"],
                via="console",
            )
        except ApplicationError as refused:
            error = refused.error
            form.add_error(refused.field if refused.field in form.fields else None, refused.message)
    if created is not None:
        context = {**_product_context(request, access), "created": created}
        if _is_htmx(request):
            return render(request, "products/_api_user_dialog.html#api_user_token", context)
        context = {**_team_context(request, access), "created": created}
        return render(request, "products/team.html", context)
    if _is_htmx(request):
        context = {**_product_context(request, access), "api_user_form": form}
        response = render(request, "products/_api_user_dialog.html#api_user_form", context)
        response["X-Quanta-Error"] = error
        return response
    return render(
        request, "products/team.html", _team_context(request, access, api_user_form=form), status=400
    )


@require_POST
def team_api_user_delete(request: HttpRequest, product: str, api_user_id: int) -> HttpResponse:
    access = _access(request, product, "team.manage")
    api_user = (
        ApiUser.objects.select_related("user", "product")
        .filter(pk=api_user_id, product=access.product)
        .first()
    )
    if api_user is None:
        raise Http404("No such API user on this product's team.")
    services.api_user_delete(actor=request.user, api_user=api_user, via="console")
    messages.success(request, f"Deleted the API user {api_user.friendly_name}; its token no longer works.")
    return redirect(_team_url(access.product))
