import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Device.product becomes a foreign key to products.Product (the column stays product_id)."""

    dependencies = [
        ("devices", "0001_initial"),
        ("products", "0002_product_ids_start_at_1000"),
    ]

    operations = [
        # The composite index goes first and comes back last, so no database drops it implicitly.
        migrations.RemoveIndex(model_name="device", name="device_product_name"),
        migrations.RemoveField(model_name="device", name="product_id"),
        migrations.AddField(
            model_name="device",
            name="product",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="devices",
                to="products.product",
            ),
        ),
        migrations.AddIndex(
            model_name="device",
            index=models.Index(fields=["product", "name"], name="device_product_name"),
        ),
    ]
