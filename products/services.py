"""Creating and changing products and their teams."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.text import slugify

from console.accounts.models import User
from console.accounts.services import access_token_create
from console.accounts.tokens import PERMANENT_TOKEN_SECONDS
from console.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from console.permissions import Role, role_can
from console.platforms import PLATFORMS, platform_get
from console.realtime import user_notify
from console.services import audit_record
from products.limits import API_USER_LIMIT, FREE_TEAM_MEMBER_LIMIT
from products.models import ApiUser, Invitation, Membership, Product
from products.scopes import scopes_clean
from products.team import ROLE_NAMES

MAX_NAME_LENGTH = 80


def _slug_base(name: str) -> str:
    base = slugify(name)[:60].strip("-") or "product"
    return f"product-{base}" if base.isdigit() else base


def _unique_slug(name: str) -> str:
    base = _slug_base(name)
    taken = set(Product.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"


def product_create(
    *, user, name: str, platform_id: int, description: str = "", via: str = "console"
) -> Product:
    """A new product, with its creator as the team's owner."""
    if ApiUser.objects.filter(user=user).exists():
        raise PermissionDenied("API users work within their own product; they cannot create products.")
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A product needs a name.", field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise ApplicationError(
            f"Product names are at most {MAX_NAME_LENGTH} characters; this one has {len(name)}.", field="name"
        )
    platform = platform_get(platform_id)
    if platform is None:
        known = ", ".join(f"{p.id} ({p.name})" for p in PLATFORMS.values())
        raise ApplicationError(
            f"Unknown platform id {platform_id!r}. Known platforms: {known}.", field="platform_id"
        )
    description = (description or "").strip()
    if len(description) > 1000:
        raise ApplicationError(
            f"Descriptions are at most 1000 characters; this one has {len(description)}.", field="description"
        )
    for _ in range(3):  # two creators racing for one slug: the loser takes the next
        slug = _unique_slug(name)
        try:
            with transaction.atomic():
                product = Product.objects.create(
                    name=name, slug=slug, description=description, platform_id=platform.id, owner=user
                )
                Membership.objects.create(product=product, user=user, role=Role.OWNER)
                break
        except IntegrityError:
            if not Product.objects.filter(slug=slug).exists():
                raise  # not the slug race: a real fault, not the user's to fix
            continue
    else:
        raise ApplicationError(
            "Could not choose a unique address for this product; try another name.", field="name"
        )
    audit_record(actor=user, action="product.create", target=product, target_label=product.name, via=via)
    return product


# --- Team -------------------------------------------------------------------------------------------------
def _team_size(product: Product) -> int:
    return (
        Membership.objects.filter(product=product).count()
        + Invitation.objects.filter(product=product).count()
    )


def team_invite(*, actor, product: Product, email: str, role: Role, via: str = "console") -> Invitation:
    """Invite someone who has an account to the team (the caller checked ``team.manage``). They
    are emailed, and see the invitation in the console until they accept or decline."""
    email = (email or "").strip()
    invitee = User.objects.filter(email__iexact=email).first() if email else None
    if invitee is None:
        raise ApplicationError(
            f"No account uses {email or 'that address'}. Ask them to sign up first, then invite them.",
            field="username",
        )
    if ApiUser.objects.filter(user=invitee).exists():
        raise ApplicationError(
            f"{invitee.email} is an API user; API users belong to the product that created them.",
            field="username",
        )
    if Membership.objects.filter(product=product, user=invitee).exists():
        raise Conflict(f"{invitee.email} is already on this product's team.", field="username")
    with transaction.atomic():
        # Locks the product row: two invitations at once cannot both take the last seat.
        Product.objects.select_for_update().filter(pk=product.pk).first()
        if Invitation.objects.filter(product=product, user=invitee).exists():
            raise Conflict(f"{invitee.email} has already been invited.", field="username")
        if _team_size(product) >= FREE_TEAM_MEMBER_LIMIT:
            raise ApplicationError(
                f"The free plan allows {FREE_TEAM_MEMBER_LIMIT} team members, counting pending invitations. "
                "Remove a member or cancel an invitation first.",
                field="username",
            )
        invitation = Invitation.objects.create(product=product, user=invitee, role=role, invited_by=actor)
    audit_record(
        actor=actor,
        action="team.invite",
        target=product,
        target_label=product.name,
        subject_user=invitee,
        metadata={"email": invitee.email, "role": role},
        via=via,
    )
    _email_invitation(invitation)
    user_notify(user_id=invitee.pk, message=f"{actor.email} invited you to the {product.name} team.")
    return invitation


def _email_invitation(invitation: Invitation) -> None:
    from console.tasks import send_email

    context = {
        "product": invitation.product,
        "inviter": invitation.invited_by,
        "role": ROLE_NAMES[Role(invitation.role)],
        "url": settings.QUANTA_PUBLIC_URL.rstrip("/") + reverse("invitations:list"),
        "site_name": settings.SITE_NAME,
    }
    subject = f"Join the {invitation.product.name} team on {settings.SITE_NAME}"
    body = render_to_string("products/email/invitation.txt", context)
    to = [invitation.user.email]
    transaction.on_commit(lambda: send_email.delay(subject=subject, body=body, to=to))


def invitation_accept(*, user, invitation: Invitation) -> Membership:
    if invitation.user_id != user.pk:
        raise NotFound("Invitation not found.")
    with transaction.atomic():
        Invitation.objects.filter(pk=invitation.pk).delete()
        membership, _ = Membership.objects.get_or_create(
            product=invitation.product, user=user, defaults={"role": invitation.role}
        )
    audit_record(
        actor=user,
        action="team.join",
        target=invitation.product,
        target_label=invitation.product.name,
        metadata={"role": invitation.role},
    )
    return membership


def invitation_decline(*, user, invitation: Invitation) -> None:
    if invitation.user_id != user.pk:
        raise NotFound("Invitation not found.")
    invitation.delete()
    audit_record(
        actor=user, action="team.decline", target=invitation.product, target_label=invitation.product.name
    )


def invitation_cancel(*, actor, invitation: Invitation, via: str = "console") -> None:
    """Withdraw a pending invitation (the caller checked ``team.manage``)."""
    invitation.delete()
    audit_record(
        actor=actor,
        action="team.invite_cancel",
        target=invitation.product,
        target_label=invitation.product.name,
        subject_user=invitation.user,
        via=via,
    )


def member_remove(*, actor, actor_role: Role, product: Product, member, via: str = "console") -> None:
    """Remove someone from the team, or leave it (``member`` is the actor). Managers may remove
    others; anyone but the owner may leave; the owner is never removed."""
    membership = Membership.objects.filter(product=product, user=member).first()
    if membership is None:
        raise NotFound(f"{getattr(member, 'email', member)} is not on this product's team.")
    if membership.role == Role.OWNER:
        raise PermissionDenied("The product's owner cannot be removed from its team.")
    if member.pk != actor.pk and not role_can(actor_role, "team.manage"):
        raise PermissionDenied("Your role does not allow team manage.")
    membership.delete()
    audit_record(
        actor=actor,
        action="team.leave" if member.pk == actor.pk else "team.remove",
        target=product,
        target_label=product.name,
        subject_user=member,
        via=via,
    )


# --- API users -----------------------------------------------------------------------------------------
API_USER_EMAIL_DOMAIN = "api-users.invalid"  # never deliverable: these accounts receive no mail
MAX_FRIENDLY_NAME_LENGTH = 80


@dataclass(frozen=True)
class CreatedApiUser:
    api_user: ApiUser
    token: str  # returned to the caller once and never stored


def _friendly_name_clean(friendly_name: object) -> str:
    name = str(friendly_name or "").strip()
    if not name:
        raise ApplicationError("An API user needs a friendly_name.", field="friendly_name")
    if len(name) > MAX_FRIENDLY_NAME_LENGTH:
        raise ApplicationError(
            f"friendly_name is at most {MAX_FRIENDLY_NAME_LENGTH} characters; this one has {len(name)}.",
            field="friendly_name",
        )
    return name


def api_user_create(
    *, actor, product: Product, friendly_name: object, scopes: object, via: str = "console"
) -> CreatedApiUser:
    """A programmatic team member with one never-expiring token (the caller checked
    ``team.manage``). Its username is an address that receives no mail, as on Particle."""
    name = _friendly_name_clean(friendly_name)
    clean_scopes = scopes_clean(scopes)
    base = slugify(name)[:40].strip("-") or "api-user"
    with transaction.atomic():
        # Locks the product row so two creations cannot both take the last place.
        Product.objects.select_for_update().filter(pk=product.pk).first()
        if ApiUser.objects.filter(product=product).count() >= API_USER_LIMIT:
            raise ApplicationError(
                f"A product has at most {API_USER_LIMIT} API users. Delete one you no longer use first.",
                field="friendly_name",
            )
        user = User.objects.create_user(
            email=f"{base}+{secrets.token_hex(4)}@{API_USER_EMAIL_DOMAIN}",
            password=None,  # unusable: an API user never signs in, it only holds tokens
            first_name=name[:150],
        )
        api_user = ApiUser.objects.create(
            product=product, user=user, friendly_name=name, scopes=clean_scopes, created_by=actor
        )
        issued = access_token_create(
            user=user,
            expires_in_seconds=PERMANENT_TOKEN_SECONDS,
            description=f"API user of {product.name}"[:100],
            via=via,
        )
    audit_record(
        actor=actor,
        action="team.api_user_create",
        target=product,
        target_label=product.name,
        # Not subject_user: the account goes when the API user is deleted, the record stays.
        metadata={"username": user.email, "friendly_name": name, "scopes": clean_scopes},
        via=via,
    )
    return CreatedApiUser(api_user=api_user, token=issued.token)


def api_user_update(
    *, actor, api_user: ApiUser, friendly_name: object = None, scopes: object = None, via: str = "console"
) -> ApiUser:
    """Rename an API user or replace its scopes (the caller checked ``team.manage``); its tokens
    keep working with the new scopes from the next request."""
    changes: dict[str, object] = {}
    if friendly_name is not None:
        changes["friendly_name"] = _friendly_name_clean(friendly_name)
    if scopes is not None:
        changes["scopes"] = scopes_clean(scopes)
    if not changes:
        raise ApplicationError("Nothing to change: send friendly_name and/or scopes.")
    with transaction.atomic():
        for field, value in changes.items():
            setattr(api_user, field, value)
        api_user.save(update_fields=[*changes, "updated_at"])
        if "friendly_name" in changes:
            User.objects.filter(pk=api_user.user_id).update(first_name=str(changes["friendly_name"])[:150])
    audit_record(
        actor=actor,
        action="team.api_user_update",
        target=api_user.product,
        target_label=api_user.product.name,
        metadata={"username": api_user.user.email, **changes},
        via=via,
    )
    return api_user


def api_user_delete(*, actor, api_user: ApiUser, via: str = "console") -> None:
    """Delete an API user: its account goes, and every token it holds stops working at once."""
    product, email = api_user.product, api_user.user.email
    audit_record(
        actor=actor,
        action="team.api_user_delete",
        target=product,
        target_label=product.name,
        metadata={"username": email, "friendly_name": api_user.friendly_name},
        via=via,
    )
    User.objects.filter(pk=api_user.user_id).delete()  # cascades to the ApiUser row and the tokens
