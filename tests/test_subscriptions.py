"""The subscription service: permission-checked realtime fan-out over the outbox."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from kernel import BadRequest, Forbidden, NotFound, Principal, Unauthorized
from kernel.config import Settings
from kernel.events.reader import Event, Position
from kernel.runtime import Tessera
from kernel.subscriptions import Subscription, SubscriptionClosed, SubscriptionService
from kernel.subscriptions.access import Grant
from tests.conftest import Api, running, unique_id
from tests.test_policies import OWNER_POLICIES, signed_in

NOTE_FIELDS = [{"name": "title", "type": "string"}]
DOC_FIELDS = [{"name": "owner", "type": "integer"}, {"name": "title", "type": "string"}]
WAIT = 10.0


def kernel_of(api: Api) -> Tessera:
    return api.client.app.state.tessera  # type: ignore[attr-defined]


async def principal_of(api: Api, headers: dict[str, str]) -> Principal:
    return await kernel_of(api).authenticator.principal(httpx.Headers(headers))


async def subscribe(
    api: Api,
    headers: dict[str, str],
    collections: list[str],
    cursor: str | None = None,
    project: str | None = None,
) -> Subscription:
    subscription = kernel_of(api).subscriptions.open(
        await principal_of(api, headers),
        project or api.project,
        collections=collections,
        cursor=cursor,
    )
    return await subscription.start()


async def next_event(subscription: Subscription) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        return await anext(subscription)


async def next_ids(subscription: Subscription, count: int) -> list[int]:
    return [(await next_event(subscription))["id"] for _ in range(count)]


# -- delivery ---------------------------------------------------------------------------


async def test_subscriber_sees_creates_updates_and_deletes_live(api: Api) -> None:
    await api.create_collection("notes", NOTE_FIELDS)
    async with await subscribe(api, api.headers, ["notes"]) as subscription:
        record = await api.create("notes", {"title": "first"})
        one = api.url(f"/collections/notes/records/{record['id']}")
        changed = await api.client.patch(one, json={"title": "second"}, headers=api.headers)
        assert changed.status_code == 200, changed.text
        assert (await api.client.delete(one, headers=api.headers)).status_code == 204

        events = [await next_event(subscription) for _ in range(3)]
    assert [(e["type"], e["collection"], e["id"]) for e in events] == [
        ("insert", "notes", record["id"]),
        ("update", "notes", record["id"]),
        ("delete", "notes", record["id"]),
    ]
    assert events[1]["changed_fields"] == ["title"]
    assert set(events[0]) == {"type", "collection", "id", "changed_fields", "ts", "cursor"}
    assert len({event["cursor"] for event in events}) == 3


async def test_events_of_another_project_do_not_reach_a_subscriber(
    api: Api, admin_headers: dict[str, str]
) -> None:
    other = Api(api.client, admin_headers, unique_id())
    created = await api.client.post(
        "/api/projects", json={"id": other.project, "name": "Other"}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    for project in (api, other):
        await project.create_collection("notes", NOTE_FIELDS)
    async with await subscribe(api, api.headers, ["notes"]) as subscription:
        await other.create("notes", {"title": "elsewhere"})
        mine = await api.create("notes", {"title": "here"})
        event = await next_event(subscription)
    assert event["id"] == mine["id"]


async def test_a_renamed_collection_is_watched_under_its_old_name(api: Api) -> None:
    await api.create_collection("orders", NOTE_FIELDS)
    renamed = await api.apply("rename_collection", collection="orders", new_name="invoices")
    assert renamed.status_code == 200, renamed.text
    async with await subscribe(api, api.headers, ["orders"]) as subscription:
        record = await api.create("invoices", {"title": "x"})
        event = await next_event(subscription)
    assert (event["collection"], event["id"]) == ("orders", record["id"])


# -- permissions ------------------------------------------------------------------------


async def test_row_rule_filters_events_per_subscriber(api: Api) -> None:
    await api.create_collection("docs", DOC_FIELDS)
    await api.set_policies("docs", **OWNER_POLICIES)
    alice_id, alice = await signed_in(api, "alice@example.com")
    bob_id, bob = await signed_in(api, "bob@example.com")
    async with (
        await subscribe(api, alice, ["docs"]) as alices,
        await subscribe(api, bob, ["docs"]) as bobs,
    ):
        for_bob = await api.create("docs", {"owner": bob_id, "title": "b"})
        for_alice = await api.create("docs", {"owner": alice_id, "title": "a"})
        assert await next_ids(alices, 1) == [for_alice["id"]]
        assert await next_ids(bobs, 1) == [for_bob["id"]]


async def test_subscribers_sharing_a_rule_and_auth_values_cost_one_evaluation(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.create_collection("docs", DOC_FIELDS)
    await api.set_policies("docs", **OWNER_POLICIES)
    alice_id, alice = await signed_in(api, "alice@example.com")
    _, bob = await signed_in(api, "bob@example.com")
    at_fan_out: list[tuple[int, int]] = []
    sees = Grant.sees

    def counted(grant: Grant, event: Event, now: Any) -> bool:
        if sys._getframe(1).f_code.co_name == "_fan_out":
            at_fan_out.append((event.id, grant.context["auth.id"]))
        return sees(grant, event, now)

    monkeypatch.setattr(Grant, "sees", counted)
    async with (
        await subscribe(api, alice, ["docs"]) as first,
        await subscribe(api, alice, ["docs"]) as second,
        await subscribe(api, bob, ["docs"]) as third,
    ):
        records = [await api.create("docs", {"owner": alice_id, "title": t}) for t in "ab"]
        ids = [record["id"] for record in records]
        assert await next_ids(first, 2) == ids
        assert await next_ids(second, 2) == ids
    assert third.grants  # bob's subscription was live all along
    assert len(at_fan_out) == 4  # two events, two groups (alice, bob): not three subscribers
    assert len(set(at_fan_out)) == 4


async def test_key_scoped_to_one_collection_sees_only_that_one(api: Api) -> None:
    for name in ("tasks", "notes"):
        await api.create_collection(name, NOTE_FIELDS)
        await api.set_policies(name, list="", read="")
    key = await api.key(["realtime"], collections=["tasks"])
    with pytest.raises(Forbidden) as refused:
        await subscribe(api, key, ["notes"])
    assert refused.value.items[0].code == "collection_not_allowed"
    async with await subscribe(api, key, ["tasks"]) as subscription:
        await api.create("notes", {"title": "hidden"})
        task = await api.create("tasks", {"title": "shown"})
        assert await next_ids(subscription, 1) == [task["id"]]


async def test_key_without_the_realtime_scope_is_refused(api: Api) -> None:
    await api.create_collection("notes", NOTE_FIELDS)
    await api.set_policies("notes", list="", read="")
    key = await api.key(["records:read"])
    with pytest.raises(Forbidden) as refused:
        await subscribe(api, key, ["notes"])
    assert refused.value.items[0].code == "missing_scope"


async def test_anonymous_without_read_permission_is_denied(api: Api) -> None:
    await api.create_collection("notes", NOTE_FIELDS)
    await api.set_policies("notes", list="", read=None)
    service = kernel_of(api).subscriptions
    before = service.subscriber_count
    with pytest.raises(Unauthorized):
        await subscribe(api, {}, ["notes"])
    user = await api.user("reader@example.com")
    with pytest.raises(Forbidden) as refused:
        await subscribe(api, user, ["notes"])
    assert refused.value.items[0].code == "policy_denied"
    assert service.subscriber_count == before


async def test_bad_subscriptions_are_refused_with_the_reason(api: Api) -> None:
    await api.create_collection("notes", NOTE_FIELDS)
    with pytest.raises(NotFound):
        await subscribe(api, api.headers, ["nothing"])
    with pytest.raises(NotFound):
        await subscribe(api, api.headers, ["notes"], project="nosuchproject")
    with pytest.raises(BadRequest) as empty:
        await subscribe(api, api.headers, [])
    assert empty.value.items[0].field == "collections"
    with pytest.raises(BadRequest) as bad_cursor:
        await subscribe(api, api.headers, ["notes"], cursor="not-a-cursor")
    assert bad_cursor.value.items[0].code == "invalid_cursor"


async def test_a_policy_change_ends_a_subscription_that_lost_access(api: Api) -> None:
    await api.create_collection("notes", NOTE_FIELDS)
    await api.set_policies("notes", list="", read="")
    user = await api.user("reader@example.com")
    service = kernel_of(api).subscriptions
    before = service.subscriber_count
    subscription = await subscribe(api, user, ["notes"])
    await api.set_policies("notes", list=None, read=None)
    await api.create("notes", {"title": "secret"})
    with pytest.raises(SubscriptionClosed) as closed:
        await next_event(subscription)
    assert closed.value.items[0].code == "access_changed"
    assert service.subscriber_count == before


async def test_an_event_without_a_bus_message_arrives_by_polling(
    api: Api, pg: asyncpg.Connection
) -> None:
    """A bus message lost during a reconnect only delays an event."""
    await api.create_collection("notes", NOTE_FIELDS)
    catalog = await kernel_of(api).catalog.get(api.project)
    notes = catalog.live_collections["notes"]
    async with await subscribe(api, api.headers, ["notes"]) as subscription:
        await pg.execute(
            "INSERT INTO tessera.events (project_id, collection_id, collection, record_id,"
            " type, changed_fields, row) VALUES ($1, $2, 'notes', 4242, 'insert', '{}', '{}')",
            api.project,
            notes.id,
        )
        assert await next_ids(subscription, 1) == [4242]


# -- resuming ---------------------------------------------------------------------------


async def test_reconnect_with_a_cursor_replays_missed_events_then_continues_live(
    api: Api,
) -> None:
    await api.create_collection("notes", NOTE_FIELDS)
    async with await subscribe(api, api.headers, ["notes"]) as subscription:
        seen = await api.create("notes", {"title": "seen"})
        cursor = (await next_event(subscription))["cursor"]
    missed = [await api.create("notes", {"title": t}) for t in ("m1", "m2")]
    async with await subscribe(api, api.headers, ["notes"], cursor=cursor) as resumed:
        assert await next_ids(resumed, 2) == [record["id"] for record in missed]
        live = await api.create("notes", {"title": "live"})
        assert await next_ids(resumed, 1) == [live["id"]]
    assert seen["id"] not in [record["id"] for record in missed]


async def test_replay_racing_live_writes_has_no_gap_and_no_duplicate(api: Api) -> None:
    await api.create_collection("notes", NOTE_FIELDS)
    async with await subscribe(api, api.headers, ["notes"]) as subscription:
        await api.create("notes", {"title": "start"})
        cursor = (await next_event(subscription))["cursor"]
    written = [(await api.create("notes", {"title": f"before{n}"}))["id"] for n in range(20)]

    async def write_more() -> list[int]:
        return [(await api.create("notes", {"title": f"during{n}"}))["id"] for n in range(30)]

    async with await subscribe(api, api.headers, ["notes"], cursor=cursor) as resumed:
        writer = asyncio.create_task(write_more())
        received = await next_ids(resumed, 50)
        written += await writer
    assert received == written


async def test_an_event_committed_during_the_last_replay_read_is_not_lost(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed offers it while the subscription still replays (so it is dropped), after
    the replay's final read took its snapshot: the replay must read once more."""
    await api.create_collection("notes", NOTE_FIELDS)
    async with await subscribe(api, api.headers, ["notes"]) as watcher:
        await api.create("notes", {"title": "start"})
        cursor = (await next_event(watcher))["cursor"]
        injected: list[int] = []
        backlog = SubscriptionService.backlog

        async def backlog_then_commit(
            service: SubscriptionService, subscription: Subscription, after: Position
        ) -> tuple[Position | None, list[Any]]:
            read = await backlog(service, subscription, after)
            if read[0] is None and subscription is not watcher and not injected:
                injected.append((await api.create("notes", {"title": "late"}))["id"])
                assert await next_ids(watcher, 1) == injected  # the feed has offered it
            return read

        monkeypatch.setattr(SubscriptionService, "backlog", backlog_then_commit)
        async with await subscribe(api, api.headers, ["notes"], cursor=cursor) as resumed:
            assert await next_ids(resumed, 1) == injected


async def test_an_event_offered_again_is_delivered_once(api: Api) -> None:
    await api.create_collection("notes", NOTE_FIELDS)
    async with await subscribe(api, api.headers, ["notes"]) as subscription:
        await api.create("notes", {"title": "first"})
        first = await next_event(subscription)
        subscription.offer(Position.decode(first["cursor"]), first)
        second = await api.create("notes", {"title": "second"})
        assert await next_ids(subscription, 1) == [second["id"]]


async def test_closing_a_subscription_removes_the_subscriber(api: Api) -> None:
    await api.create_collection("notes", NOTE_FIELDS)
    service = kernel_of(api).subscriptions
    before = service.subscriber_count
    subscription = await subscribe(api, api.headers, ["notes"])
    assert service.subscriber_count == before + 1
    subscription.close()
    assert service.subscriber_count == before
    with pytest.raises(SubscriptionClosed):
        await next_event(subscription)


# -- bounds and shutdown ----------------------------------------------------------------


async def test_a_slow_subscriber_is_dropped_at_the_bound_and_others_on_shutdown(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    async with running(make_settings(realtime_queue_size=3)) as client:
        api = Api(client, admin_headers, unique_id())
        created = await client.post(
            "/api/projects", json={"id": api.project, "name": "Slow"}, headers=admin_headers
        )
        assert created.status_code == 201, created.text
        await api.create_collection("notes", NOTE_FIELDS)
        service = kernel_of(api).subscriptions
        slow = await subscribe(api, api.headers, ["notes"])
        idle = await subscribe(api, api.headers, ["notes"])
        for n in range(3):
            await api.create("notes", {"title": f"n{n}"})
        await next_ids(idle, 3)  # keeps up
        await api.create("notes", {"title": "one too many"})
        await next_ids(idle, 1)  # the same fan-out found the slow queue full
        assert service.subscriber_count == 1
        with pytest.raises(SubscriptionClosed) as dropped:
            await next_event(slow)
        assert dropped.value.items[0].code == "slow_subscriber"
        assert "reconnect" in dropped.value.items[0].message
    with pytest.raises(SubscriptionClosed) as stopped:
        await next_event(idle)
    assert stopped.value.items[0].code == "shutting_down"
