"""Console pages for signing in and managing one's account and access tokens."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_http_methods, require_POST

from console.accounts import selectors, services
from console.accounts.forms import LoginForm, PasswordResetForm, ProfileForm, SignUpForm, TokenCreateForm
from console.accounts.landing import login_landing
from console.accounts.tokens import PERMANENT_TOKEN_SECONDS, is_permanent
from console.errors import ApplicationError
from console.http import client_ip


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)  # login() rotates the session key
        services.user_logged_in(user=form.get_user(), ip_address=client_ip(self.request), via="console")
        return response

    def get_success_url(self) -> str:
        # A page the user asked for comes first; otherwise what waits for them (invitations).
        return self.get_redirect_url() or login_landing(self.request.user) or super().get_success_url()


@login_not_required
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("console:home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_sign_up(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                ip_address=client_ip(request),
            )
        except ApplicationError as error:
            form.add_error("password1" if error.field == "password" else error.field, error.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome to Quanta. Your account is ready.")
            return redirect("console:home")
    return render(request, "accounts/signup.html", {"form": form})


@method_decorator(login_not_required, name="dispatch")
class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetForm
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset_email.txt"
    html_email_template_name = "accounts/email/password_reset_email.html"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password-reset-done")

    def form_valid(self, form):
        self.extra_email_context = {"site_name": settings.SITE_NAME}
        return super().form_valid(form)


@method_decorator(login_not_required, name="dispatch")
class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


@method_decorator(login_not_required, name="dispatch")
class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password-reset-complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.user_password_reset_complete(user=form.user)
        return response


@method_decorator(login_not_required, name="dispatch")
class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


def _account_page(request, *, profile_form=None, password_form=None, status=200) -> HttpResponse:
    return render(
        request,
        "accounts/account.html",
        {
            "page_title": "Account",
            "profile_form": profile_form or ProfileForm(instance=request.user),
            "password_form": password_form or PasswordChangeForm(request.user),
        },
        status=status,
    )


@require_http_methods(["GET"])
def account(request: HttpRequest) -> HttpResponse:
    return _account_page(request)


@require_POST
def profile_update(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST, instance=request.user)
    if not form.is_valid():
        return _account_page(request, profile_form=form, status=400)
    services.user_profile_update(
        user=request.user,
        first_name=form.cleaned_data["first_name"],
        last_name=form.cleaned_data["last_name"],
    )
    messages.success(request, "Profile saved.")
    return redirect("accounts:account")


@require_POST
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST)
    if not form.is_valid():
        return _account_page(request, password_form=form, status=400)
    services.user_password_change(
        user=request.user, new_password=form.cleaned_data["new_password1"], ip_address=client_ip(request)
    )
    update_session_auth_hash(request, request.user)  # keep this session signed in
    messages.success(request, "Password changed. Your other sessions were signed out.")
    return redirect("accounts:account")


class TokenRow:
    """A token as the tokens page shows it."""

    def __init__(self, access_token) -> None:
        detail = getattr(access_token, "detail", None)
        self.pk = access_token.pk
        self.description = detail.description if detail else ""
        self.hint = detail.hint if detail else ""
        self.last_used_at = detail.last_used_at if detail else None
        self.client_label = services.client_label(access_token.application)
        self.created = access_token.created
        self.expires = (
            None
            if is_permanent(created=access_token.created, expires=access_token.expires)
            else access_token.expires
        )
        self.is_expired = access_token.is_expired()


@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST or None)
    new_token = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            issued = services.access_token_create(
                user=request.user,
                expires_in_seconds=form.cleaned_data["expires_in"] or PERMANENT_TOKEN_SECONDS,
                description=form.cleaned_data["description"],
                ip_address=client_ip(request),
            )
            new_token = issued.token  # shown in this response only; never stored
            form = TokenCreateForm()
        else:
            status = 400
    rows = [TokenRow(t) for t in selectors.access_token_list_for_user(user=request.user)]
    return render(
        request,
        "accounts/tokens.html",
        {
            "page_title": "Access tokens",
            "tokens": rows,
            "create_form": form,
            "new_token": new_token,
            "form_has_errors": status == 400,
        },
        status=status,
    )


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    access_token = get_object_or_404(selectors.access_token_list_for_user(user=request.user), pk=pk)
    services.access_token_revoke(user=request.user, access_token=access_token, ip_address=client_ip(request))
    messages.success(request, "Token revoked.")
    return redirect("accounts:tokens")


@require_POST
def tokens_revoke_all(request: HttpRequest) -> HttpResponse:
    count = services.access_token_revoke_all(user=request.user, ip_address=client_ip(request))
    messages.success(request, f"Revoked {count} token{'s' if count != 1 else ''}.")
    return redirect("accounts:tokens")
