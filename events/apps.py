from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"

    def ready(self) -> None:
        from console import nav, realtime
        from events.streams import EventStream

        realtime.stream_register("events", EventStream.open)
        nav.nav_register(
            nav.NavItem(key="events", label="Events", url_name="events:logs", icon="activity", order=20)
        )
