from django.urls import include, path

from console import views
from console.accounts.oauth import TokenView

console_patterns = (
    [
        path("", views.home, name="home"),
        path("account/audit/", views.audit, name="audit"),
        path("docs/api/", views.api_docs, name="api-docs"),
        path("dev/mailbox/", views.mailbox, name="mailbox"),
        path("dev/mailbox/<str:message_id>/", views.mailbox, name="mailbox-message"),
        path("dev/mailbox/<str:message_id>/html/", views.mailbox_html, name="mailbox-html"),
    ],
    "console",
)

urlpatterns = [
    path("", include(console_patterns)),
    path("", include("console.accounts.urls")),
    path("devices/", include("devices.urls")),
    path("products/<str:product>/devices/", include("devices.urls_products")),
    path("products/<str:product>/firmware/", include("firmware.urls")),
    path("products/", include("products.urls")),
    path("events/", include("events.urls")),
    path("invitations/", include("products.urls_invitations")),
    path("oauth/token", TokenView.as_view(), name="oauth-token"),
    path("v1/", include("console.api.urls")),
]

handler400 = views.handler400
handler403 = views.handler403
handler404 = views.handler404
handler500 = views.handler500
