"""Fuzzing: schemathesis over both OpenAPI documents, against a live ``tessera serve``.

Every operation of the platform's ``/openapi.json`` and of a project's own document (a
collection with every core field type, another with required, unique and ruled fields) gets
generated requests, valid and invalid, with an admin token and with a limited API key.
Each answer must be no 5xx, and must be what the document says: a documented status, the
documented content type and the documented body. A client generated from the documents
therefore works against the server.

Bounded for ``make test``: ``TESSERA_FUZZ_EXAMPLES`` examples per operation and mode, and
``TESSERA_FUZZ_SECONDS`` per document and credential (operations not reached in time are
listed in the test's output, never reported as passing). ``make fuzz`` runs deeper.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, unique_id
from tests.server import TesseraServer, tessera_env
from tests.test_records import ALL_TYPES as EVERY_TYPE

EXAMPLES = int(os.environ.get("TESSERA_FUZZ_EXAMPLES", "25"))
SECONDS = float(os.environ.get("TESSERA_FUZZ_SECONDS", "40"))
#: ``make fuzz`` explores (random, shrinking failures); ``make test`` repeats itself.
DEEP = os.environ.get("TESSERA_FUZZ_DEEP") == "1"
#: pytest-timeout's limit: ``SECONDS`` (``make fuzz``: 20 minutes) plus the server's start and
#: the examples of the operation under way when the time is up.
pytestmark = pytest.mark.timeout(SECONDS + 300)
#: Requests carry the credential under test, not generated ones (bad credentials: 401 on
#: every protected route, tests/test_isolation.py).
CONFIG = {"generation": {"with-security-parameters": False}}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Required, unique and ruled fields: the document's bodies carry the rules (minLength,
#: maximum, pattern, enum ...), so generated bodies meet them or are refused as documented.
STRICT = [
    {
        "name": "code",
        "type": "string",
        "required": True,
        "unique": True,
        "rules": [
            {"type": "min_length", "value": 2},
            {"type": "max_length", "value": 12},
            {"type": "pattern", "value": "^[a-z0-9-]+$"},
        ],
    },
    {
        "name": "count",
        "type": "integer",
        "required": True,
        "default": 0,
        "rules": [{"type": "min", "value": 0}, {"type": "max", "value": 1000}],
    },
    {"name": "note", "type": "text", "rules": [{"type": "max_length", "value": 200}]},
    {"name": "status", "type": "string", "rules": [{"type": "enum", "value": ["open", "shut"]}]},
]
#: Operations that would end the run's own setup (the project, the keys under test): never
#: sent to the run's project.
DESTRUCTIVE = {
    ("DELETE", "/api/projects/{project_id}"),
    ("DELETE", "/api/projects/{project_id}/api-keys/{key_id}"),
}


@dataclass
class Fuzzed:
    """What one run found: failures (operation, request, what was wrong) and coverage."""

    failures: list[str] = field(default_factory=list)
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    operations: int = 0
    not_reached: list[str] = field(default_factory=list)

    def report(self, log: Path) -> str:
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        return "\n\n".join([*self.failures[:20], f"server log (tail):\n{tail}"])


@dataclass(frozen=True)
class Target:
    url: str
    log: Path
    project: str
    admin: dict[str, str]
    limited: dict[str, str]


@pytest.fixture(scope="module")
def target(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data = tmp_path_factory.mktemp("fuzz")
    log = data / "server.log"
    env = tessera_env(
        TESSERA_DATABASE_URL=database_url,
        TESSERA_DATA_DIR=str(data),
        TESSERA_SECRET_KEY="fuzz-secret-key-not-for-production",
        TESSERA_ADMIN_EMAIL=ADMIN_EMAIL,
        TESSERA_ADMIN_PASSWORD=ADMIN_PASSWORD,
        TESSERA_LOG_LEVEL="warning",
    )
    with log.open("w") as output, TesseraServer(env, output=output) as server:
        http = httpx.Client(base_url=server.url, timeout=30)
        login = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        token = http.post("/api/admin/login", json=login).json()["token"]
        admin = {"Authorization": f"Bearer {token}"}
        project = unique_id("fz")
        base = f"/api/projects/{project}"
        steps = [
            http.post("/api/projects", json={"id": project, "name": "Fuzz"}, headers=admin),
            http.post(
                f"{base}/collections", json={"name": "every", "fields": EVERY_TYPE}, headers=admin
            ),
            http.post(
                f"{base}/collections", json={"name": "strict", "fields": STRICT}, headers=admin
            ),
        ]
        open_policies = dict.fromkeys(("list", "read", "create", "update", "delete"), "")
        steps.append(
            http.put(f"{base}/collections/every/policies", json=open_policies, headers=admin)
        )
        key = http.post(
            f"{base}/api-keys",
            json={
                "name": "limited",
                "scopes": ["records:read", "records:write"],
                "collections": ["every"],
            },
            headers=admin,
        )
        for response in [*steps, key]:
            assert response.is_success, response.text
        for record in ({"name": "a", "qty": 1}, {"name": "b", "meta": {"x": [1]}}):
            assert http.post(
                f"{base}/collections/every/records", json=record, headers=admin
            ).is_success
        yield Target(server.url, log, project, admin, {"X-API-Key": key.json()["key"]})


def fuzz(schema: Any, target: Target, headers: dict[str, str]) -> Fuzzed:
    """Every operation of ``schema`` with generated requests sent with ``headers``: valid
    ones in the run's project (deep: past the checks of the project and its collections),
    invalid ones anywhere (wide: any path, any value)."""
    found = Fuzzed()
    deadline = time.monotonic() + SECONDS
    session = requests.Session()
    phases = [Phase.explicit, Phase.generate, *([Phase.shrink] if DEEP else [])]
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if time.monotonic() > deadline:
            found.not_reached.append(label)
            continue
        found.operations += 1
        pinned = None
        names = {parameter.name for parameter in operation.path_parameters}
        if "project_id" in names and (operation.method.upper(), operation.path) not in DESTRUCTIVE:
            pinned = {"project_id": target.project}
        for mode, path_parameters in (
            (GenerationMode.POSITIVE, pinned),
            (GenerationMode.NEGATIVE, None),
        ):
            strategy = operation.as_strategy(mode, path_parameters=path_parameters)
            run = _examples(strategy, found, session, target, headers, label, deadline)
            try:
                settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    derandomize=not DEEP,
                    database=None,
                    phases=phases,
                    suppress_health_check=list(HealthCheck),
                )(run)()
            except Unsatisfiable:  # nothing to get wrong (no parameters, no body)
                continue
    return found


def _examples(
    strategy: Any,
    found: Fuzzed,
    session: requests.Session,
    target: Target,
    headers: dict[str, str],
    label: str,
    deadline: float,
) -> Any:
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        if time.monotonic() > deadline:
            return
        response = case.call(base_url=target.url, session=session, headers=headers, timeout=30)
        found.requests += 1
        found.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (FailureGroup, AssertionError) as failure:  # collect it, go on
            found.failures.append(f"{label}\n{case.as_curl_command()}\n{failure}"[:3000])

    return run


def _assert_clean(found: Fuzzed, target: Target) -> None:
    print(
        f"fuzzed {found.operations} operations with {found.requests} requests "
        f"(statuses {dict(sorted(found.statuses.items()))}); "
        f"not reached within {SECONDS:.0f} s: {found.not_reached or 'none'}"
    )
    assert found.requests > 0
    assert not found.failures, f"{len(found.failures)} failures:\n" + found.report(target.log)


@pytest.mark.parametrize("credential", ["admin", "limited"])
def test_the_platform_document_tells_the_truth(target: Target, credential: str) -> None:
    config = schemathesis.Config.from_dict(CONFIG)
    schema = schemathesis.openapi.from_url(f"{target.url}/openapi.json", config=config)
    _assert_clean(fuzz(schema, target, getattr(target, credential)), target)


@pytest.mark.parametrize("credential", ["admin", "limited"])
def test_a_project_document_tells_the_truth(target: Target, credential: str) -> None:
    headers = getattr(target, credential)
    url = f"{target.url}/api/projects/{target.project}/openapi.json"
    config = schemathesis.Config.from_dict(CONFIG)
    schema = schemathesis.openapi.from_url(url, config=config, headers=headers)
    _assert_clean(fuzz(schema, target, headers), target)
