from __future__ import annotations

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation
from django.db import transaction
from django.template import loader

from console.accounts import throttle
from console.accounts.models import User
from console.errors import RateLimited
from console.http import client_ip


class LoginForm(auth_forms.AuthenticationForm):
    """Django's login form behind the shared login throttle."""

    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def clean(self):
        ip = client_ip(self.request)
        username = self.data.get("username", "")
        try:
            throttle.login_check_allowed(ip=ip, username=username)
        except RateLimited as limited:
            raise forms.ValidationError(limited.message, code="throttled") from None
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if self.data.get("password"):
                throttle.login_record_failure(ip=ip, username=username)
            raise
        throttle.login_record_success(ip=ip)
        return cleaned


class SignUpForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Confirm password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email address already exists. Sign in instead.")
        return email

    def clean(self):
        cleaned = super().clean()
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords do not match.")
        elif password1 and cleaned.get("email"):
            try:
                password_validation.validate_password(password1, User(email=cleaned["email"]))
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Sends the reset email through a task, after the request commits."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        from console.tasks import send_email

        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        html = (
            loader.render_to_string(html_email_template_name, context) if html_email_template_name else None
        )
        transaction.on_commit(
            lambda: send_email.delay(
                subject=subject, body=body, to=[to_email], from_email=from_email, html=html
            )
        )


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["first_name", "last_name"]


TOKEN_LIFETIMES = [
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("2592000", "30 days"),
    ("7776000", "90 days"),
    ("31536000", "1 year"),
    ("0", "Never expires"),
]


class TokenCreateForm(forms.Form):
    description = forms.CharField(
        max_length=100,
        required=False,
        help_text="What the token is for, e.g. “CI deploys” or “Home Assistant”.",
    )
    expires_in = forms.TypedChoiceField(
        label="Expires", choices=TOKEN_LIFETIMES, initial="7776000", coerce=int
    )
