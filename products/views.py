"""Console pages for products: the list with its New product dialog, a product's overview and its
events (the API lives in products/api.py).

Every product is looked up through ``products.selectors.product_access`` with the action the page
needs: another team's product, or an unknown one, is a 404 and its existence never leaks. Product
URLs take the numeric id or the slug; the console's own links use the slug.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Count, F
from django.db.models.functions import Lower
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from console.errors import ApplicationError, NotFound, PermissionDenied
from console.nav import NavHeader
from console.permissions import Role
from console.platforms import platform_get, platform_name
from devices.selectors import product_firmware_version_counts, product_online_samples
from events.views import event_log_context
from products.charts import TimeChart, TimePoint, firmware_version_bars, time_chart
from products.forms import ProductCreateForm
from products.models import Membership, Product
from products.selectors import ProductAccess, product_access, product_list_for_user
from products.services import product_create

INVALID = "invalid"  # the X-Quanta-Error of a form that did not validate
ROLE_ORDER = {role.value: index for index, role in enumerate(Role)}  # owner first, viewer last
ONLINE_CHART_SPAN = timedelta(hours=24)


# --- helpers ----------------------------------------------------------------------------------------
def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true" and "HX-History-Restore-Request" not in request.headers


def _access(request: HttpRequest, product: str, action: str) -> ProductAccess:
    """The product named in the URL, if the user's role on its team allows ``action``."""
    try:
        access = product_access(user=request.user, id_or_slug=product, action=action)
    except NotFound:
        raise Http404("No such product on your teams.") from None
    except PermissionDenied as denied:
        raise DjangoPermissionDenied(denied.message) from None
    request.product_access = access  # the sidebar's product context needs no second lookup
    return access


def product_nav_header(request: HttpRequest, id_or_slug: str) -> NavHeader | None:
    """The sidebar's product context (console/nav.py): the product's name and id, or None when the
    user is not on its team."""
    access = getattr(request, "product_access", None)
    if access is None or id_or_slug.strip().lower() not in {str(access.product.id), access.product.slug}:
        try:
            access = product_access(user=request.user, id_or_slug=id_or_slug)
        except ApplicationError:
            return None
    product = access.product
    return NavHeader(
        title=product.name,
        url_value=product.slug,
        detail=str(product.id),
        detail_icon="key",
        detail_label="Product ID",
    )


def _role_label(role: str) -> str:
    return Role(role).value.title()


# --- the list -----------------------------------------------------------------------------------------
def _list_context(request: HttpRequest, form: ProductCreateForm | None = None) -> dict:
    # One query: the products of the user's teams with their role, from the membership join that
    # selects them (one row per product), and their device count.
    products = list(
        product_list_for_user(user=request.user)
        .annotate(role=F("memberships__role"), device_count=Count("devices"))
        .order_by(Lower("name"), "id")
    )
    for product in products:
        product.platform_name = platform_name(product.platform_id)
        product.role_label = _role_label(product.role)
    return {
        "page_title": "Products",
        "products": products,
        "product_form": form or ProductCreateForm(),
        "open_product_dialog": form is not None,
    }


@require_GET
def product_list(request: HttpRequest) -> HttpResponse:
    return render(request, "products/list.html", _list_context(request))


@require_http_methods(["GET", "POST"])
def product_new(request: HttpRequest) -> HttpResponse:
    """The New product dialog posts here. htmx gets the form back with its errors in place (200,
    with ``X-Quanta-Error``), or a redirect to the new product; without htmx, errors re-render the
    list with the dialog open. A GET is the overview of a product whose slug is "new"."""
    if request.method == "GET":
        return product_overview(request, "new")
    form = ProductCreateForm(request.POST)
    product: Product | None = None
    error = INVALID
    if form.is_valid():
        try:
            product = product_create(
                user=request.user,
                name=form.cleaned_data["name"],
                platform_id=form.cleaned_data["platform_id"],
                description=form.cleaned_data["description"],
                via="console",
            )
        except ApplicationError as refused:
            error = refused.error
            field = refused.field if refused.field in form.fields else None
            form.add_error(field, refused.message)
    if product is not None:
        messages.success(request, f"Created {product.name}. Its product ID is {product.id}.")
        url = reverse("products:overview", args=[product.slug])
        if _is_htmx(request):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return redirect(url)
    if _is_htmx(request):
        response = render(request, "products/_new_dialog.html#product_form", {"product_form": form})
        response["X-Quanta-Error"] = error
        return response
    return render(request, "products/list.html", _list_context(request, form))


# --- one product ----------------------------------------------------------------------------------------
def _product_context(request: HttpRequest, access: ProductAccess) -> dict:
    product = access.product
    platform = platform_get(product.platform_id)
    return {
        "page_title": product.name,
        "product": product,
        "platform": platform,
        "platform_name": platform_name(product.platform_id),
        "role": access.role,
        "role_label": _role_label(access.role),
    }


def _online_chart(product: Product, *, now: datetime, online: int, total: int) -> TimeChart | None:
    """The last 24 hours of samples and the live count as the last point; None until there are two
    samples (a line needs two points, the live one alone says nothing about the past)."""
    start = now - ONLINE_CHART_SPAN
    samples = product_online_samples(product=product, since=start)
    if len(samples) < 2:
        return None
    points = [TimePoint(at=sample.taken_at, value=sample.online, total=sample.total) for sample in samples]
    points.append(TimePoint(at=now, value=online, total=total))
    # One missed period (a run that started late) is bridged; a longer silence shows as a gap.
    max_gap = timedelta(seconds=settings.QUANTA_ONLINE_SAMPLE_SECONDS * 2.5)
    return time_chart(points, start=start, end=now, max_gap=max_gap)


@require_GET
def product_overview(request: HttpRequest, product: str) -> HttpResponse:
    access = _access(request, product, "product.read")
    # Aggregates only, so the page costs the same for 5 devices and for 100,000: the version counts
    # also give the device totals.
    versions = product_firmware_version_counts(product=access.product)
    total = sum(version.total for version in versions)
    online = sum(version.online for version in versions)
    members = sorted(
        Membership.objects.filter(product=access.product).select_related("user"),
        key=lambda member: (ROLE_ORDER.get(member.role, len(ROLE_ORDER)), member.user.email.lower()),
    )
    for member in members:
        member.role_label = _role_label(member.role)
    context = {
        **_product_context(request, access),
        "device_total": total,
        "device_online": online,
        "online_chart": _online_chart(access.product, now=timezone.now(), online=online, total=total),
        "sample_minutes": max(settings.QUANTA_ONLINE_SAMPLE_SECONDS // 60, 1),
        "firmware_bars": firmware_version_bars((version.version, version.total) for version in versions),
        "firmware_reported": any(version.version is not None for version in versions),
        "members": members,
        **event_log_context(filter_text=""),
        "event_log_embedded": True,
    }
    return render(request, "products/overview.html", context)


@require_GET
def product_events(request: HttpRequest, product: str) -> HttpResponse:
    access = _access(request, product, "event.read")
    context = {
        **_product_context(request, access),
        **event_log_context(filter_text=request.GET.get("q", "")[:1000]),
    }
    context["page_title"] = f"Events · {access.product.name}"
    return render(request, "products/events.html", context)
