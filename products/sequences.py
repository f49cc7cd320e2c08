"""Product ids start above every platform id (``FIRST_PRODUCT_ID``), also after ``manage.py
flush``, which resets id counters: this runs after every migrate and flush (``post_migrate``)."""

from __future__ import annotations

from django.db import connections

from products.models import FIRST_PRODUCT_ID, Product


def product_ids_floor(*, using: str = "default", **kwargs) -> None:
    """Move the product id counter up to ``FIRST_PRODUCT_ID`` if it is below; never down."""
    connection = connections[using]
    table = Product._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "  # noqa: S608
                f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), %s))",
                [table, FIRST_PRODUCT_ID - 1],
            )
        elif connection.vendor == "sqlite":
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            if row is None:
                cursor.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, FIRST_PRODUCT_ID - 1]
                )
            elif row[0] < FIRST_PRODUCT_ID - 1:
                cursor.execute(
                    "UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [FIRST_PRODUCT_ID - 1, table]
                )
