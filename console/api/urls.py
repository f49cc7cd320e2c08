"""/v1 routes. Each app adds its own module here as it arrives."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView

from console.accounts import api as accounts_api
from console.api.views import api_not_found
from devices import urls_api as devices_api
from events import urls_api as events_api
from firmware import urls_api as firmware_api
from products import urls_api as products_api

app_name = "api"

urlpatterns = [
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="schema"),
    path("user", accounts_api.UserView.as_view(), name="user"),
    path("users", accounts_api.UsersView.as_view(), name="users"),
    path("access_tokens", accounts_api.AccessTokenListView.as_view(), name="access-tokens"),
    path("access_tokens/current", accounts_api.CurrentTokenView.as_view(), name="access-token-current"),
    path(
        "access_tokens/<str:token>", accounts_api.AccessTokenDetailView.as_view(), name="access-token-detail"
    ),
    *products_api.urlpatterns,
    *events_api.urlpatterns,
    *devices_api.urlpatterns,
    *firmware_api.urlpatterns,
    # Last: anything else under /v1 is a JSON 404, also with DEBUG on.
    re_path(r"^.*$", api_not_found, name="not-found"),
]
