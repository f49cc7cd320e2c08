from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "console.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from console import nav

        nav.nav_register(
            nav.NavItem(
                key="tokens",
                label="Access tokens",
                url_name="accounts:tokens",
                icon="key",
                order=910,
                section=nav.Section.ACCOUNT,
            )
        )
        nav.nav_register(
            nav.NavItem(
                key="account",
                label="Account",
                url_name="accounts:account",
                icon="user",
                order=900,
                section=nav.Section.ACCOUNT,
            )
        )
