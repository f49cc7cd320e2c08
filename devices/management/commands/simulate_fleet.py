"""Run a fleet of simulated devices against a gateway (devices/simulator.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices import simulator


def _number(kind: type[int] | type[float], *, minimum: float, inclusive: bool, maximum: float | None = None):
    """An argparse type: a number above (or from) ``minimum`` and at most ``maximum``, with a
    readable error."""
    noun = "an integer" if kind is int else "a number"
    bound = f"{'at least' if inclusive else 'more than'} {minimum:g}"
    if maximum is not None:
        bound = f"from {minimum:g} to {maximum:g}" if inclusive else f"{bound} and at most {maximum:g}"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        too_big = maximum is not None and not value <= maximum  # also refuses nan
        if value < minimum or (value == minimum and not inclusive) or too_big:
            raise argparse.ArgumentTypeError(f"expected {noun} {bound}, got {text}")
        return value

    return parse


POSITIVE_INT = _number(int, minimum=0, inclusive=False)
POSITIVE = _number(float, minimum=0, inclusive=False)
NON_NEGATIVE_INT = _number(int, minimum=0, inclusive=True)
NON_NEGATIVE = _number(float, minimum=0, inclusive=True)
PROBABILITY = _number(float, minimum=0, inclusive=True, maximum=1)


class Command(BaseCommand):
    help = (
        "Connect simulated devices from a key file (manage.py provision_devices --out) to the device "
        "gateway: they publish readings, answer function calls and variable reads, and reconnect "
        "when dropped. Runs until Ctrl-C, or for --seconds."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--keys", required=True, metavar="FILE", help="the key file (JSON lines)")
        parser.add_argument(
            "--devices", type=POSITIVE_INT, metavar="N", help="run the first N devices (default: all)"
        )
        parser.add_argument(
            "--rate",
            type=NON_NEGATIVE,
            default=0.2,
            metavar="EVENTS_PER_S",
            help="events each device publishes per second on average, at most 1 (default: 0.2)",
        )
        parser.add_argument(
            "--churn",
            type=NON_NEGATIVE,
            default=0.0,
            metavar="PER_MINUTE",
            help="how often each device drops its connection, per minute on average (default: 0)",
        )
        parser.add_argument(
            "--ota-fail-rate",
            type=PROBABILITY,
            default=0.0,
            metavar="P",
            help="the chance, 0 to 1, that a device corrupts a firmware update it receives, so that "
            "its SHA-256 check fails and it reports the update failed (default: 0)",
        )
        parser.add_argument("--url", default=simulator.DEFAULT_URL, help="default: %(default)s")
        parser.add_argument(
            "--ramp",
            type=POSITIVE,
            default=50.0,
            metavar="PER_S",
            help="new connections per second while the fleet starts (default: 50)",
        )
        parser.add_argument(
            "--product-id",
            type=NON_NEGATIVE_INT,
            help="the product id every device reports (overrides the key file)",
        )
        parser.add_argument(
            "--product-version",
            type=NON_NEGATIVE_INT,
            help="the firmware version every device reports (overrides the key file)",
        )
        parser.add_argument(
            "--system-version", default=simulator.DEFAULT_SYSTEM_VERSION, help="default: %(default)s"
        )
        parser.add_argument(
            "--seconds",
            type=POSITIVE,
            metavar="S",
            help="stop after S seconds (default: run until Ctrl-C)",
        )
        parser.add_argument(
            "--wait-for-server",
            type=POSITIVE,
            nargs="?",
            const=120.0,
            metavar="SECONDS",
            help="first wait until the server accepts connections (at most SECONDS, default 120)",
        )
        parser.add_argument(
            "--status-interval",
            type=POSITIVE,
            default=5.0,
            metavar="S",
            help="seconds between status lines (default: 5)",
        )
        parser.add_argument("--seed", type=int, help="seed the random behaviour, for repeatable runs")

    def handle(self, *args, **options) -> None:
        if options["rate"] > simulator.MAX_PUBLISH_RATE:
            raise CommandError(
                f"--rate is at most {simulator.MAX_PUBLISH_RATE:g}: the cloud allows each device "
                "1 event per second on average."
            )
        try:
            simulator.url_host_port(options["url"])
        except ValueError as error:
            raise CommandError(f"--url: {error}") from None
        try:
            keys = simulator.load_keys(options["keys"])
        except simulator.KeyFileError as error:
            raise CommandError(str(error)) from None
        if options["devices"] is not None and options["devices"] > len(keys):
            raise CommandError(f"--devices {options['devices']}: {options['keys']} has {len(keys)} devices.")
        asyncio.run(self._run(keys, options))

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    async def _run(self, keys: list[simulator.DeviceKey], options: dict) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def on_signal() -> None:
            stop.set()
            for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C interrupts at once
                loop.remove_signal_handler(signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on Windows
                loop.add_signal_handler(signum, on_signal)
        if options["wait_for_server"] is not None:
            self._say(f"waiting for the server at {options['url']}")
            if not await simulator.wait_for_server(options["url"], stop, timeout=options["wait_for_server"]):
                if stop.is_set():
                    return
                raise CommandError(f"The server at {options['url']} did not accept connections in time.")
        await simulator.run_fleet(
            keys,
            options["url"],
            devices=options["devices"],
            rate=options["rate"],
            churn=options["churn"],
            ota_fail_rate=options["ota_fail_rate"],
            ramp=options["ramp"],
            product_id=options["product_id"],
            product_version=options["product_version"],
            system_version=options["system_version"],
            seconds=options["seconds"],
            status_interval=options["status_interval"],
            seed=options["seed"],
            stop=stop,
            report=self._say,
        )
