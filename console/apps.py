from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    label = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from console import nav

        nav.nav_register(nav.NavItem(key="home", label="Home", url_name="console:home", icon="home", order=0))
        nav.nav_register(
            nav.NavItem(
                key="audit",
                label="Audit log",
                url_name="console:audit",
                icon="list",
                order=920,
                section=nav.Section.ACCOUNT,
            )
        )
        nav.nav_register(
            nav.NavItem(
                key="api-docs",
                label="API reference",
                url_name="console:api-docs",
                icon="code",
                order=930,
                section=nav.Section.ACCOUNT,
            )
        )
