from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"

    def ready(self) -> None:
        from console import realtime
        from events.streams import EventStream

        realtime.stream_register("events", EventStream)

