"""A product's events: its SSE stream (every team role reads it, nobody else learns it exists),
publishing to it (the roles that may, the product's data limit), how product events mix with the
account-wide streams (``/v1/events/:prefix`` yes, "mine" no), and the console stream narrowed to
one product."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient
from rest_framework.test import APIClient

from console.accounts.models import User
from console.accounts.services import access_token_create
from console.api.errors import TOKEN_NOT_FOUND
from console.permissions import Role
from console.platforms import PLATFORMS
from devices.models import Device
from devices.services import devices_provision
from events.hub import hub
from events.services import event_apublish
from events.types import Event
from products.models import Membership, Product
from products.services import product_create
from tests.events.test_console_stream import connect, live, subscribe, summary
from tests.events.test_sse import Stream, get, held_slots, open_stream, parse

pytestmark = pytest.mark.django_db(transaction=True)

BORON = PLATFORMS[13]
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PUBLISHERS = [Role.OWNER, Role.ADMINISTRATOR, Role.DEVELOPER]
READ_ONLY = [Role.SUPPORT, Role.VIEWER]


@dataclass
class Member:
    user: User
    token: str

    @property
    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        return client


def token_for(user) -> str:
    return access_token_create(user=user, expires_in_seconds=3600, client_id="particle").token


@pytest.fixture(autouse=True)
async def _streams(settings):
    settings.QUANTA_EVENT_USAGE_FLUSH_SECONDS = 3600  # no background writes from these tests
    settings.QUANTA_PUBLISH_BURST = 50  # these tests publish in bursts; the limit has tests of its own
    yield
    for stream in list(Stream.opened):
        await stream.close()
    Stream.opened.clear()
    # Views ran in asgiref's worker thread; the test client leaves its connection open.
    await sync_to_async(connections.close_all)()


@pytest.fixture
def product(user) -> Product:
    return product_create(user=user, name="Greenhouse", platform_id=BORON.id)


@pytest.fixture
def team(user, token, product) -> dict[Role, Member]:
    """The owner (``user``) and one member in each other role."""
    members = {Role.OWNER: Member(user, token)}
    for role in (Role.ADMINISTRATOR, Role.DEVELOPER, Role.SUPPORT, Role.VIEWER):
        member = User.objects.create_user(email=f"{role.value}@example.com", password="x" * 12)
        Membership.objects.create(product=product, user=member, role=role)
        members[role] = Member(member, token_for(member))
    return members


@pytest.fixture
def outsider(other_user) -> Member:
    """On a team of their own, not on ``product``'s."""
    product_create(user=other_user, name="Elsewhere", platform_id=BORON.id)
    return Member(other_user, token_for(other_user))


@pytest.fixture
def device(product) -> Device:
    """A device of the product, claimed by nobody (as fleet devices are)."""
    return devices_provision(platform=BORON, count=1, product=product)[0].device


class Clock:
    def __init__(self) -> None:
        self.ticks = 0

    def __call__(self) -> datetime:
        self.ticks += 1
        return START + timedelta(milliseconds=self.ticks)


clock = Clock()


def device_event(device: Device, name: str = "temp", data: str = "21.5", **fields) -> Event:
    """What the gateway publishes for a product device: its product's id on the event."""
    values = {
        "published_at": clock(),
        "coreid": device.id,
        "owner_id": device.owner_id,
        "product_id": device.product_id,
        "device_name": device.name,
        **fields,
    }
    return Event(name=name, data=data, **values)


def not_found(reference) -> dict:
    message = f"Product {str(reference)!r} not found."
    return {"ok": False, "error": message, "error_description": message}


async def read_events(stream: Stream, count: int) -> list[tuple[str, dict]]:
    """Exactly the next ``count`` events (over Redis they may arrive in several chunks)."""
    received: list[tuple[str, dict]] = []
    while len(received) < count:
        received += parse(await stream.read())
    assert len(received) == count, received
    return received


async def publish_over_http(path: str, token: str, **fields):
    return await AsyncClient().post(
        path,
        urlencode(fields),
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": f"Bearer {token}"},
    )


# --- The product's SSE stream -------------------------------------------------------------------------------
async def test_a_product_devices_event_reaches_every_roles_stream(team, product, device, user, other_user):
    other_product = await sync_to_async(product_create)(user=user, name="Shed", platform_id=BORON.id)
    streams = {
        role: await open_stream(f"/v1/products/{product.id}/events", member.token)
        for role, member in team.items()
    }
    by_slug = await open_stream(f"/v1/products/{product.slug.upper()}/events", team[Role.VIEWER].token)

    # Not this product's: the owner's own device outside it, another product, someone else's.
    await event_apublish(
        Event(name="temp", data="own", published_at=clock(), coreid="a" * 24, owner_id=user.pk)
    )
    await event_apublish(device_event(device, data="shed", product_id=other_product.id))
    await event_apublish(
        Event(name="temp", data="x", published_at=clock(), coreid="b" * 24, owner_id=other_user.pk)
    )
    published = device_event(device, "temp", "21.5", ttl=30)
    await event_apublish(published)

    for role, stream in [*streams.items(), ("by-slug", by_slug)]:
        [(name, body)] = await read_events(stream, 1)
        assert name == "temp", role
        assert body == json.loads(published.sse_data()), role
        assert (body["coreid"], body["data"], body["ttl"]) == (device.id, "21.5", 30), role
        assert await stream.nothing(0.05), role


async def test_a_prefix_narrows_the_product_stream(team, product, device):
    stream = await open_stream(f"/v1/products/{product.slug}/events/temp", team[Role.SUPPORT].token)
    encoded = await open_stream(f"/v1/products/{product.id}/events/temp%2Fin", team[Role.VIEWER].token)
    for name in ("humidity", "temp", "temperature", "temp/inside", "Temp"):
        await event_apublish(device_event(device, name, name))
    assert [name for name, _ in await read_events(stream, 3)] == ["temp", "temperature", "temp/inside"]
    assert [name for name, _ in await read_events(encoded, 1)] == ["temp/inside"]
    assert await stream.nothing(0.05)
    assert await encoded.nothing(0.05)


async def test_outsiders_get_a_404_and_no_stream(team, product, outsider):
    unknown_id = product.id + 1000
    references = [product.id, product.slug, unknown_id, "no-such-product"]
    for reference in references:
        for path in (f"/v1/products/{reference}/events", f"/v1/products/{reference}/events/temp"):
            response = await get(path, token=outsider.token)
            assert response.status_code == 404, path
            assert response["Content-Type"] == "application/json", path
            assert response.json() == not_found(reference), path
    # An existing product's refusal reads exactly like an unknown one's.
    theirs = (await get(f"/v1/products/{product.id}/events", token=outsider.token)).json()
    unknown = (await get(f"/v1/products/{unknown_id}/events", token=outsider.token)).json()
    assert json.dumps(theirs).replace(str(product.id), "?") == json.dumps(unknown).replace(
        str(unknown_id), "?"
    )
    assert await held_slots() == 0
    assert hub.subscriber_count == 0


async def test_anonymous_and_bad_tokens_are_refused(product):
    for path in (f"/v1/products/{product.id}/events", f"/v1/products/{product.slug}/events/temp"):
        anonymous = await get(path)
        assert anonymous.status_code == 400
        assert anonymous.json() == {"error": "invalid_request", "error_description": TOKEN_NOT_FOUND}
        bad = await get(path, token="0" * 40)
        assert (bad.status_code, bad.json()["error"]) == (401, "invalid_token")
    assert await held_slots() == 0
    assert hub.subscriber_count == 0


async def test_a_removed_member_can_no_longer_open_the_stream(team, product):
    viewer = team[Role.VIEWER]
    await open_stream(f"/v1/products/{product.id}/events", viewer.token)
    await sync_to_async(Membership.objects.filter(user=viewer.user).delete)()
    response = await get(f"/v1/products/{product.id}/events", token=viewer.token)
    assert (response.status_code, response.json()) == (404, not_found(product.id))


# --- Publishing to a product --------------------------------------------------------------------------------
def product_history(product: Product) -> list[Event]:
    return hub.recent(product_ids=[product.id], limit=20)


def post_event(client: APIClient, reference, **fields):
    return client.post(
        f"/v1/products/{reference}/events",
        urlencode(fields),
        content_type="application/x-www-form-urlencoded",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("role", PUBLISHERS)
def test_owners_administrators_and_developers_publish(team, product, role):
    member = team[role]
    response = post_event(member.client, product.id, name="valve/open", data="3", ttl="5", private="false")
    assert (response.status_code, response.json()) == (200, {"ok": True})
    response = member.client.post(f"/v1/products/{product.slug}/events", {"name": "json"}, format="json")
    assert (response.status_code, response.json()) == (200, {"ok": True})
    first, second = product_history(product)
    assert (first.name, first.data, first.ttl, first.private) == ("valve/open", "3", 5, False)
    assert (first.coreid, first.owner_id, first.product_id, first.device_name) == (
        "api",
        None,
        product.id,
        None,
    )
    assert (second.name, second.data, second.coreid, second.product_id) == ("json", None, "api", product.id)
    # A product publish is the product's, not the publisher's own.
    assert hub.recent(user_id=member.user.pk, limit=10) == []


@pytest.mark.django_db
@pytest.mark.parametrize("role", READ_ONLY)
def test_support_and_viewers_may_not_publish(team, product, role):
    response = post_event(team[role].client, product.id, name="valve/open", data="3")
    assert response.status_code == 403
    assert response.json() == {
        "ok": False,
        "error": "Your role does not allow event publish.",
        "error_description": "Your role does not allow event publish.",
    }
    assert product_history(product) == []


@pytest.mark.django_db
def test_outsiders_and_unknown_products_are_404_and_publish_nothing(team, product, outsider, api_client):
    unknown_id = product.id + 1000
    for reference in (product.id, product.slug, unknown_id, "no-such-product"):
        response = post_event(outsider.client, reference, name="valve/open")
        assert (response.status_code, response.json()) == (404, not_found(reference)), reference
    assert post_event(team[Role.OWNER].client, unknown_id, name="x").json() == not_found(unknown_id)
    response = post_event(api_client, product.id, name="valve/open")
    assert (response.status_code, response.json()["error_description"]) == (400, TOKEN_NOT_FOUND)
    assert product_history(product) == []
    assert hub.recent(user_id=outsider.user.pk, limit=10) == []


@pytest.mark.django_db
def test_a_prefix_path_is_a_stream_not_a_publish(team, product):
    response = team[Role.OWNER].client.post(
        f"/v1/products/{product.id}/events/temp",
        urlencode({"name": "temp"}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 405
    assert response.json()["ok"] is False
    assert product_history(product) == []


@pytest.mark.django_db
def test_the_products_data_limit_applies_and_can_be_raised(team, product):
    client = team[Role.DEVELOPER].client
    response = post_event(client, product.id, name="blob", data="x" * 1025)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "data"
    assert "at most 1024 bytes; this is 1025" in body["error"]
    assert post_event(client, product.id, name="blob", data="é" * 512).status_code == 200  # 1024 bytes

    Product.objects.filter(pk=product.pk).update(event_data_limit=4096)
    response = post_event(client, product.id, name="blob", data="y" * 3000)
    assert (response.status_code, response.json()) == (200, {"ok": True})
    response = post_event(client, product.id, name="blob", data="z" * 4097)
    assert response.status_code == 400
    assert "at most 4096 bytes; this is 4097" in response.json()["error"]
    assert [len(event.data) for event in product_history(product)] == [512, 3000]
    # The user's own publishes keep the account limit.
    own = client.post(
        "/v1/devices/events",
        urlencode({"name": "blob", "data": "y" * 3000}),
        content_type="application/x-www-form-urlencoded",
    )
    assert (own.status_code, own.json()["field"]) == (400, "data")


async def test_a_published_event_reaches_the_product_stream_and_not_the_publishers_own(team, product):
    owner, viewer = team[Role.OWNER], team[Role.VIEWER]
    product_stream = await open_stream(f"/v1/products/{product.id}/events", viewer.token)
    mine = await open_stream("/v1/devices/events", owner.token)
    viewers_own = await open_stream("/v1/devices/events", viewer.token)

    response = await publish_over_http(
        f"/v1/products/{product.slug}/events", owner.token, name="valve", data="open"
    )
    assert (response.status_code, response.json()) == (200, {"ok": True})
    [(name, body)] = await read_events(product_stream, 1)
    assert (name, body["data"], body["coreid"], body["ttl"]) == ("valve", "open", "api", 60)
    assert await mine.nothing()
    assert await viewers_own.nothing(0.05)


async def test_the_events_prefix_stream_includes_product_events_for_members_only(
    team, product, device, outsider
):
    viewer = team[Role.VIEWER]
    member_stream = await open_stream("/v1/events/temp", viewer.token)
    member_own = await open_stream("/v1/devices/events", viewer.token)
    outsider_stream = await open_stream("/v1/events/temp", outsider.token)

    await event_apublish(device_event(device, "humidity", "40"))  # outside the prefix
    await event_apublish(device_event(device, "temp", "21.5"))
    [(name, body)] = await read_events(member_stream, 1)
    assert (name, body["data"], body["coreid"]) == ("temp", "21.5", device.id)

    response = await publish_over_http(
        f"/v1/products/{product.id}/events", team[Role.DEVELOPER].token, name="temp/api", data="1"
    )
    assert response.status_code == 200
    [(name, body)] = await read_events(member_stream, 1)
    assert (name, body["coreid"]) == ("temp/api", "api")

    assert await member_stream.nothing(0.05)
    assert await member_own.nothing(0.05)  # "mine" is the member's own devices only
    assert await outsider_stream.nothing(0.05)


# --- The console stream, narrowed to one product ----------------------------------------------------------
async def test_the_console_stream_narrows_to_one_product(team, product, device, user):
    other_product = await sync_to_async(product_create)(user=user, name="Shed", platform_id=BORON.id)
    [provisioned] = await sync_to_async(devices_provision)(platform=BORON, count=1, product=other_product)
    shed_device = provisioned.device
    await event_apublish(device_event(device, "temp", "before"))
    await event_apublish(device_event(shed_device, "temp", "shed before"))
    await event_apublish(
        Event(name="temp", data="own", published_at=clock(), coreid="c" * 24, owner_id=user.pk)
    )

    viewer = await connect(team[Role.VIEWER].user)
    history = await subscribe(viewer, product_id=product.id)
    assert summary(history["history"]) == [("temp", "before", device.id)]
    owner = await connect(user)
    history = await subscribe(owner, "one", product_id=product.id)
    assert summary(history["history"]) == [("temp", "before", device.id)]
    everything = await subscribe(owner, "all")  # without product_id: own and every team's
    assert summary(everything["history"]) == [
        ("temp", "before", device.id),
        ("temp", "shed before", shed_device.id),
        ("temp", "own", "c" * 24),
    ]

    await event_apublish(device_event(shed_device, "temp", "shed live"))
    await event_apublish(
        Event(name="temp", data="own live", published_at=clock(), coreid="c" * 24, owner_id=user.pk)
    )
    await event_apublish(device_event(device, "temp", "live"))
    assert summary(await live(viewer, 1)) == [("temp", "live", device.id)]
    assert await viewer.receive_nothing(0.1)

    received: dict[str, list] = {"one": [], "all": []}
    while len(received["one"]) < 1 or len(received["all"]) < 3:
        message = await owner.receive_json_from(2)
        assert (message["type"], message["dropped"]) == ("stream", 0)
        received[message["id"]] += summary(message["events"])
    assert received == {
        "one": [("temp", "live", device.id)],
        "all": [
            ("temp", "shed live", shed_device.id),
            ("temp", "own live", "c" * 24),
            ("temp", "live", device.id),
        ],
    }
    assert await owner.receive_nothing(0.1)
    await viewer.disconnect()
    await owner.disconnect()


async def test_the_console_stream_refuses_a_product_off_the_users_teams(team, product, device, outsider):
    elsewhere = await sync_to_async(Product.objects.get)(name="Elsewhere")
    communicator = await connect(team[Role.VIEWER].user)
    for index, product_id in enumerate([elsewhere.id, product.id + 1000, str(product.id), True, 12.5]):
        stream_id = f"log-{index}"
        await communicator.send_json_to(
            {"type": "subscribe", "id": stream_id, "stream": "events", "params": {"product_id": product_id}}
        )
        reply = await communicator.receive_json_from()
        assert reply == {"type": "error", "id": stream_id, "message": "No such product on your teams."}, (
            product_id
        )
    assert hub.subscriber_count == 0
    # The outsider cannot narrow to this product either, though it exists.
    theirs = await connect(outsider.user)
    await theirs.send_json_to(
        {"type": "subscribe", "id": "log", "stream": "events", "params": {"product_id": product.id}}
    )
    assert (await theirs.receive_json_from())["message"] == "No such product on your teams."
    await event_apublish(device_event(device))
    assert await communicator.receive_nothing(0.1)
    assert await theirs.receive_nothing(0.05)
    await communicator.disconnect()
    await theirs.disconnect()


async def test_an_event_on_two_scopes_is_shown_once(team, product, user):
    """A product device its owner also claimed: the event is the owner's and the product's."""
    [provisioned] = await sync_to_async(devices_provision)(
        platform=BORON, count=1, owner=user, product=product
    )
    claimed = provisioned.device
    await event_apublish(device_event(claimed, "temp", "both"))
    owner = await connect(user)
    history = await subscribe(owner)
    assert summary(history["history"]) == [("temp", "both", claimed.id)]
    await event_apublish(device_event(claimed, "temp", "live"))
    assert summary(await live(owner, 1)) == [("temp", "live", claimed.id)]
    assert await owner.receive_nothing(0.1)
    await owner.disconnect()
    await asyncio.sleep(0)
