from django.db import migrations

FIRST_PRODUCT_ID = 1000


def start_ids_at_first_product_id(apps, schema_editor):
    """New products are numbered from 1000 on, on every database."""
    table = apps.get_model("products", "Product")._meta.db_table
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                f"ALTER TABLE {table} ALTER COLUMN id SET START WITH {FIRST_PRODUCT_ID} RESTART WITH {FIRST_PRODUCT_ID}"
            )
        elif vendor == "sqlite":
            # AUTOINCREMENT tables continue from sqlite_sequence.
            cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [table])
            cursor.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, FIRST_PRODUCT_ID - 1]
            )
        else:
            raise NotImplementedError(
                f"Set the product id sequence to start at {FIRST_PRODUCT_ID} on {vendor}."
            )


class Migration(migrations.Migration):
    dependencies = [("products", "0001_initial")]

    operations = [migrations.RunPython(start_ids_at_first_product_id, migrations.RunPython.noop)]
