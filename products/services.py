"""Creating and changing products and their teams."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.text import slugify

from console.accounts.models import User
from console.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from console.permissions import Role, role_can
from console.platforms import PLATFORMS, platform_get
from console.realtime import user_notify
from console.services import audit_record
from products.limits import FREE_TEAM_MEMBER_LIMIT
from products.models import Invitation, Membership, Product
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
