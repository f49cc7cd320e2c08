"""Console pages owned by the project package: home, audit log, API reference, dev mailbox,
and the error handlers (JSON under /v1 and /oauth, pages elsewhere)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET

from console import mail
from console.accounts.selectors import access_token_count_active
from console.api.errors import json_error_response
from console.http import is_api_path
from console.selectors import audit_entries_for_user


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    token_count = access_token_count_active(user=request.user)
    return render(request, "console/home.html", {"page_title": "Home", "token_count": token_count})


@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    paginator = Paginator(audit_entries_for_user(user=request.user), 50)
    page_obj = paginator.get_page(request.GET.get("page"))
    return render(request, "console/audit.html", {"page_title": "Audit log", "page_obj": page_obj})


# Redoc builds its styles at run time, so its page alone allows inline styles and web workers.
_DOCS_CSP = {
    **settings.SECURE_CSP,
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "worker-src": [CSP.SELF, "blob:"],
    "img-src": [CSP.SELF, "data:", "https:"],
}


@require_GET
@csp_override(_DOCS_CSP)
def api_docs(request: HttpRequest) -> HttpResponse:
    return render(
        request, "console/api_docs.html", {"page_title": "API reference", "schema_url": reverse("api:schema")}
    )


@login_not_required
@require_GET
def mailbox(request: HttpRequest, message_id: str | None = None) -> HttpResponse:
    """Dev mailbox: the emails Quanta would have sent. Only with DEBUG on."""
    if not settings.DEBUG:
        raise Http404("The dev mailbox is only available with DEBUG on.")
    messages_list = mail.mailbox_list()
    selected = (
        mail.mailbox_get(message_id=message_id)
        if message_id
        else (messages_list[0] if messages_list else None)
    )
    if message_id and selected is None:
        raise Http404("No such email.")
    context = {
        "page_title": "Dev mailbox",
        "mailbox": [
            {
                "id": m.id,
                "subject": m.subject,
                "to": m.to,
                "date": m.date,
                "url": reverse("console:mailbox-message", args=[m.id]),
                "active": selected is not None and m.id == selected.id,
            }
            for m in messages_list
        ],
        "message": selected,
        "message_html_url": reverse("console:mailbox-html", args=[selected.id])
        if selected and selected.html
        else None,
    }
    return render(request, "console/mailbox.html", context)


@login_not_required
@require_GET
@csp_override(
    {
        "default-src": [CSP.NONE],
        "style-src": [CSP.UNSAFE_INLINE],
        "img-src": ["data:"],
        "frame-ancestors": [CSP.SELF],
    }
)
def mailbox_html(request: HttpRequest, message_id: str) -> HttpResponse:
    """An email's HTML part, sandboxed by its own CSP (no scripts), for the mailbox's iframe."""
    if not settings.DEBUG:
        raise Http404("The dev mailbox is only available with DEBUG on.")
    message = mail.mailbox_get(message_id=message_id)
    if message is None or not message.html:
        raise Http404("No such email.")
    response = HttpResponse(message.html)
    response["X-Frame-Options"] = "SAMEORIGIN"
    return response


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return json_error_response(404, f"No API route matches {request.method} {request.path}.")
    return render(request, "404.html", status=404)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return json_error_response(403, "Permission denied.")
    # Product pages refuse with the action the role lacks ("Your role does not allow group manage.").
    reason = str(exception) if isinstance(exception, PermissionDenied) and exception.args else ""
    return render(request, "403.html", {"reason": reason}, status=403)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return json_error_response(400, "Bad request.")
    return render(request, "400.html", status=400)


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api_path(request.path):
        return json_error_response(500, "Internal server error.")
    # No context processors: the failure may be in them.
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if is_api_path(request.path):
        return json_error_response(403, f"CSRF verification failed: {reason}")
    return render(request, "403_csrf.html", {"reason": reason}, status=403)
