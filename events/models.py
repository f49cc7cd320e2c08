from django.db import models


class EventCount(models.Model):
    """Events published per scope per UTC day, for usage and billing. Written in batches from each
    process's counters, never once per event."""

    # "product:<id>" for a product's devices, "user:<id>" for a developer's own devices and the API.
    scope = models.CharField(max_length=40)
    day = models.DateField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "day"], name="event_count_one_row_per_day")]

    def __str__(self) -> str:
        return f"{self.scope} {self.day}: {self.count}"
