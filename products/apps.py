from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _product_ids_floor(sender, using="default", **kwargs) -> None:
    from products.sequences import product_ids_floor

    product_ids_floor(using=using)


class ProductsConfig(AppConfig):
    name = "products"
    verbose_name = "Products"

    def ready(self) -> None:
        from console import nav
        from console.accounts.landing import login_landing_register
        from products.invitation_views import invitations_landing
        from products.views import product_nav_header

        login_landing_register(invitations_landing)
        post_migrate.connect(_product_ids_floor, sender=self)
        nav.nav_context_register(
            nav.NavContext(
                key="product",
                label="Product",
                kwarg="product",
                section=nav.Section.PRODUCT,
                header=product_nav_header,
                back_label="All products",
                back_url_name="products:list",
            )
        )
        nav.nav_register(
            nav.NavItem(
                key="products",
                label="Products",
                url_name="products:list",
                icon="box",
                order=15,
                active_for=("products:*",),
                context="product",
            )
        )
        # A product's own pages (devices/apps.py adds Devices, at 20).
        for key, label, url_name, icon, order in (
            ("product-overview", "Overview", "products:overview", "monitor", 10),
            ("product-groups", "Groups", "products:groups", "layers", 25),
            ("product-events", "Events", "products:events", "activity", 30),
            ("product-team", "Team", "products:team", "users", 40),
        ):
            nav.nav_register(
                nav.NavItem(
                    key=key,
                    label=label,
                    url_name=url_name,
                    icon=icon,
                    order=order,
                    section=nav.Section.PRODUCT,
                )
            )
