from django.conf import settings
from django.http import HttpRequest

from console.nav import Section, nav_items


def shell(request: HttpRequest) -> dict:
    """What the console shell needs on every page: the sidebar and the API's address."""
    authenticated = getattr(request, "user", None) is not None and request.user.is_authenticated
    return {
        "site_name": settings.SITE_NAME,
        "debug": settings.DEBUG,
        "api_base_url": request.build_absolute_uri("/").rstrip("/"),
        "nav_main": nav_items(request, Section.MAIN) if authenticated else [],
        "nav_account": nav_items(request, Section.ACCOUNT) if authenticated else [],
    }
