"""The soak's mix of requests: records reads and writes through the records fast path,
platform reads and writes through FastAPI, and now and then a schema operation.

Every kind of request expects one status; anything else is an error of the run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.seed import COLLECTION, PROJECT

RECORDS = f"/api/projects/{PROJECT}/collections/{COLLECTION}/records"
PLATFORM = f"/api/projects/{PROJECT}"
#: The collection the schema operations change, apart from the one the records traffic uses.
SCRATCH = "scratch"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class Traffic:
    """What the requests need: credentials, and the records known to exist (no request
    deletes one, so any of them can be read or updated)."""

    key_headers: dict[str, str]
    user_headers: dict[str, str]
    admin_headers: dict[str, str]
    record_ids: list[int]
    rng: random.Random = field(default_factory=lambda: random.Random(14))
    fields_added: int = 0

    def record_id(self) -> int:
        return self.rng.choice(self.record_ids)

    def amount(self) -> int:
        return self.rng.randrange(0, 10_000)

    def records_caller(self) -> dict[str, str]:
        """The API key or the project user's token, one request in two each."""
        return self.key_headers if self.rng.random() < 0.5 else self.user_headers


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of request: its share of the traffic, the route's path (``fast path`` or
    ``fastapi``), the status it expects, and how to make one."""

    name: str
    weight: int
    served_by: str
    expect: int
    make: Callable[[Traffic], Request]
    #: Never two at once (schema operations queue for their collection anyway).
    serial: bool = False


def _get_record(t: Traffic) -> Request:
    return Request("GET", f"{RECORDS}/{t.record_id()}", None, t.records_caller())


def _list_records(t: Traffic) -> Request:
    query = f"?filter[amount][lt]={t.amount()}&sort=due_at:desc&limit=25"
    return Request("GET", RECORDS + query, None, t.records_caller())


def _create_record(t: Traffic) -> Request:
    body = {"title": f"soak {t.rng.random():.6f}", "amount": t.amount(), "score": 0.5}
    return Request("POST", RECORDS, body, t.records_caller())


def _update_record(t: Traffic) -> Request:
    body = {"amount": t.amount(), "score": t.rng.random()}
    return Request("PATCH", f"{RECORDS}/{t.record_id()}", body, t.records_caller())


def _get_collection(t: Traffic) -> Request:
    return Request("GET", f"{PLATFORM}/collections/{COLLECTION}", None, t.admin_headers)


def _get_project(t: Traffic) -> Request:
    return Request("GET", PLATFORM, None, t.admin_headers)


def _list_ops(t: Traffic) -> Request:
    return Request("GET", f"{PLATFORM}/schema/ops?limit=10", None, t.admin_headers)


def _rename_project(t: Traffic) -> Request:
    return Request("PATCH", PLATFORM, {"name": f"Bench {t.amount()}"}, t.admin_headers)


def _preview_op(t: Traffic) -> Request:
    body = {"op": "add_field", "args": _new_field(SCRATCH, "preview")}
    return Request("POST", f"{PLATFORM}/schema/preview", body, t.admin_headers)


def _apply_op(t: Traffic) -> Request:
    t.fields_added += 1
    body = {"op": "add_field", "args": _new_field(SCRATCH, f"f{t.fields_added}")}
    return Request("POST", f"{PLATFORM}/schema/apply", body, t.admin_headers)


def _new_field(collection: str, name: str) -> dict[str, Any]:
    return {"collection": collection, "field": {"name": name, "type": "string"}}


KINDS = (
    Kind("get_record", 30, "fast path", 200, _get_record),
    Kind("list_records", 20, "fast path", 200, _list_records),
    Kind("create_record", 12, "fast path", 201, _create_record),
    Kind("update_record", 12, "fast path", 200, _update_record),
    Kind("get_collection", 8, "fastapi", 200, _get_collection),
    Kind("get_project", 6, "fastapi", 200, _get_project),
    Kind("list_ops", 4, "fastapi", 200, _list_ops),
    Kind("rename_project", 4, "fastapi", 200, _rename_project),
    Kind("preview_op", 3, "fastapi", 200, _preview_op),
    Kind("apply_op", 1, "fastapi", 200, _apply_op, serial=True),
)


def schedule(kinds: tuple[Kind, ...], seed: int = 14) -> list[Kind]:
    """One round of the mix: each kind ``weight`` times, shuffled (the same every run)."""
    round_ = [kind for kind in kinds for _ in range(kind.weight)]
    random.Random(seed).shuffle(round_)
    return round_
