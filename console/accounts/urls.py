from django.contrib.auth import views as auth_views
from django.urls import path

from console.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path("password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password-reset-done"),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("password-reset/done/", views.PasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path("account/", views.account, name="account"),
    path("account/profile/", views.profile_update, name="profile"),
    path("account/password/", views.password_change, name="password-change"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("account/tokens/revoke-all/", views.tokens_revoke_all, name="tokens-revoke-all"),
]
