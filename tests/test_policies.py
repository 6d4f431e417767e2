"""Collection policies: who may list, read, create, update and delete which records."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import Api

SECRET = "test-secret-key-not-for-production"
OWNER_RULE = "owner = @auth.id"
OWNER_POLICIES = dict.fromkeys(("list", "read", "create", "update", "delete"), OWNER_RULE)


async def signed_in(api: Api, email: str) -> tuple[int, dict[str, str]]:
    """A new project user: their id and their bearer header."""
    headers = await api.user(email)
    claims = jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})
    return int(claims["sub"]), headers


def error_code(response: httpx.Response) -> str:
    return response.json()["errors"][0]["code"]


async def admin_read(api: Api, collection: str, record_id: int) -> dict[str, Any]:
    response = await api.client.get(
        api.url(f"/collections/{collection}/records/{record_id}"), headers=api.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def policies_of(api: Api, collection: str) -> dict[str, str | None]:
    response = await api.client.get(api.url(f"/collections/{collection}"), headers=api.headers)
    assert response.status_code == 200, response.text
    return response.json()["policies"]


# -- defaults and open collections ------------------------------------------------------


async def test_new_collection_admits_only_admins(api: Api) -> None:
    await api.create_collection("notes", [{"name": "title", "type": "string"}])
    record = await api.create("notes", {"title": "admin's"})
    assert await policies_of(api, "notes") == dict.fromkeys(
        ("list", "read", "create", "update", "delete")
    )
    user = await api.user("reader@example.com")
    key = await api.key(["records:read", "records:write"])
    records = api.url("/collections/notes/records")
    one = f"{records}/{record['id']}"
    for headers in (user, key):
        calls = [
            await api.client.get(records, headers=headers),
            await api.client.post(records, json={"title": "mine"}, headers=headers),
            await api.client.get(one, headers=headers),
            await api.client.patch(one, json={"title": "changed"}, headers=headers),
            await api.client.delete(one, headers=headers),
        ]
        for response in calls:
            assert response.status_code == 403, response.text
            assert error_code(response) == "policy_denied"

    listed = await api.client.get(records, headers=api.headers)
    assert listed.status_code == 200
    assert [row["title"] for row in listed.json()["data"]] == ["admin's"]
    assert (
        await api.client.post(records, json={"title": "b"}, headers=api.headers)
    ).status_code == 201
    assert (await admin_read(api, "notes", record["id"]))["title"] == "admin's"


async def test_empty_rule_lets_anonymous_callers_in(api: Api) -> None:
    await api.create_collection("guestbook", [{"name": "message", "type": "text"}])
    await api.set_policies("guestbook", list="", read="", create="", update=None, delete=None)
    records = api.url("/collections/guestbook/records")

    created = await api.client.post(records, json={"message": "hello"})
    assert created.status_code == 201, created.text
    listed = await api.client.get(records)
    assert listed.status_code == 200
    assert [row["message"] for row in listed.json()["data"]] == ["hello"]
    read = await api.client.get(f"{records}/{created.json()['id']}")
    assert read.status_code == 200
    assert read.json()["message"] == "hello"

    # update and delete stayed admins-only: without credentials, that is a 401
    patched = await api.client.patch(f"{records}/{created.json()['id']}", json={"message": "x"})
    assert patched.status_code == 401
    assert error_code(patched) == "unauthorized"
    assert (await admin_read(api, "guestbook", created.json()["id"]))["message"] == "hello"


# -- row rules --------------------------------------------------------------------------


@pytest.fixture
async def owned(api: Api) -> dict[str, Any]:
    """Collection ``docs`` under ``owner = @auth.id`` with two users and a record each."""
    await api.create_collection(
        "docs", [{"name": "owner", "type": "integer"}, {"name": "title", "type": "string"}]
    )
    await api.set_policies("docs", **OWNER_POLICIES)
    alice_id, alice = await signed_in(api, "alice@example.com")
    bob_id, _ = await signed_in(api, "bob@example.com")
    alices = await api.create("docs", {"owner": alice_id, "title": "alice's"})
    bobs = await api.create("docs", {"owner": bob_id, "title": "bob's"})
    return {
        "alice": alice,
        "alice_id": alice_id,
        "bob_id": bob_id,
        "alices": alices,
        "bobs": bobs,
        "records": api.url("/collections/docs/records"),
    }


async def test_owner_rule_lists_only_own_rows(api: Api, owned: dict[str, Any]) -> None:
    response = await api.client.get(owned["records"], headers=owned["alice"])
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["data"]] == [owned["alices"]["id"]]

    everything = await api.client.get(owned["records"], headers=api.headers)
    assert len(everything.json()["data"]) == 2


async def test_owner_rule_hides_other_users_rows(api: Api, owned: dict[str, Any]) -> None:
    own = await api.client.get(
        f"{owned['records']}/{owned['alices']['id']}", headers=owned["alice"]
    )
    assert own.status_code == 200
    assert own.json()["title"] == "alice's"

    other = await api.client.get(
        f"{owned['records']}/{owned['bobs']['id']}", headers=owned["alice"]
    )
    assert other.status_code == 404
    assert error_code(other) == "record_not_found"


async def test_owner_rule_refuses_changes_to_other_users_rows(
    api: Api, owned: dict[str, Any]
) -> None:
    bobs = f"{owned['records']}/{owned['bobs']['id']}"
    patched = await api.client.patch(bobs, json={"title": "hijacked"}, headers=owned["alice"])
    assert patched.status_code == 404
    assert error_code(patched) == "record_not_found"
    deleted = await api.client.delete(bobs, headers=owned["alice"])
    assert deleted.status_code == 404
    assert error_code(deleted) == "record_not_found"

    assert await admin_read(api, "docs", owned["bobs"]["id"]) == owned["bobs"]


async def test_owner_rule_lets_users_change_their_own_rows(api: Api, owned: dict[str, Any]) -> None:
    alices = f"{owned['records']}/{owned['alices']['id']}"
    patched = await api.client.patch(alices, json={"title": "renamed"}, headers=owned["alice"])
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "renamed"
    deleted = await api.client.delete(alices, headers=owned["alice"])
    assert deleted.status_code == 204
    gone = await api.client.get(alices, headers=api.headers)
    assert gone.status_code == 404


async def test_create_rule_checks_the_candidate_record(api: Api, owned: dict[str, Any]) -> None:
    for_bob = await api.client.post(
        owned["records"], json={"owner": owned["bob_id"], "title": "gift"}, headers=owned["alice"]
    )
    assert for_bob.status_code == 403
    assert error_code(for_bob) == "policy_denied"
    nobody = await api.client.post(
        owned["records"], json={"title": "orphan"}, headers=owned["alice"]
    )
    assert nobody.status_code == 403
    assert error_code(nobody) == "policy_denied"

    own = await api.client.post(
        owned["records"], json={"owner": owned["alice_id"], "title": "mine"}, headers=owned["alice"]
    )
    assert own.status_code == 201, own.text
    assert own.json()["owner"] == owned["alice_id"]

    titles = [
        row["title"]
        for row in (await api.client.get(owned["records"], headers=api.headers)).json()["data"]
    ]
    assert sorted(titles) == ["alice's", "bob's", "mine"]


async def test_update_cannot_move_a_row_out_of_reach(api: Api, owned: dict[str, Any]) -> None:
    alices = f"{owned['records']}/{owned['alices']['id']}"
    response = await api.client.patch(
        alices, json={"owner": owned["bob_id"], "title": "given away"}, headers=owned["alice"]
    )
    assert response.status_code == 403
    assert error_code(response) == "policy_denied"
    assert await admin_read(api, "docs", owned["alices"]["id"]) == owned["alices"]


async def test_anonymous_callers_match_no_owner_rule(api: Api, owned: dict[str, Any]) -> None:
    listed = await api.client.get(owned["records"])
    assert listed.status_code == 200
    assert listed.json()["data"] == []
    created = await api.client.post(owned["records"], json={"title": "anon"})
    assert created.status_code == 401  # signing in may help: not a 403
    assert error_code(created) == "unauthorized"


# -- role rules -------------------------------------------------------------------------


async def test_role_rule_admits_keys_with_that_role(api: Api) -> None:
    await api.create_collection("jobs", [{"name": "name", "type": "string"}])
    await api.create("jobs", {"name": "existing"})
    rule = "@auth.role = 'service'"
    await api.set_policies("jobs", list=rule, read=rule, create=rule, update=rule, delete=rule)
    scopes = ["records:read", "records:write"]
    service = await api.key(scopes, role="service")
    other = await api.key(scopes, role="other")
    user = await api.user("someone@example.com")
    records = api.url("/collections/jobs/records")

    created = await api.client.post(records, json={"name": "queued"}, headers=service)
    assert created.status_code == 201, created.text
    listed = await api.client.get(records, headers=service)
    assert sorted(row["name"] for row in listed.json()["data"]) == ["existing", "queued"]

    for headers in (other, user):
        refused = await api.client.post(records, json={"name": "nope"}, headers=headers)
        assert refused.status_code == 403
        assert error_code(refused) == "policy_denied"
        listed = await api.client.get(records, headers=headers)
        assert listed.status_code == 200
        assert listed.json()["data"] == []
        read = await api.client.get(f"{records}/{created.json()['id']}", headers=headers)
        assert read.status_code == 404

    names = [
        row["name"] for row in (await api.client.get(records, headers=api.headers)).json()["data"]
    ]
    assert sorted(names) == ["existing", "queued"]


# -- SQL and Python agree ---------------------------------------------------------------

CANDIDATES: dict[str, dict[str, Any]] = {
    "open_high": {"status": "open", "score": 20, "note": "n", "flag": True},
    "open_low": {"status": "open", "score": 5, "note": None, "flag": False},
    "pending_high": {"status": "pending", "score": 10, "note": None, "flag": None},
    "closed_high": {"status": "closed", "score": 50, "note": "n", "flag": False},
    "closed_none": {"status": "closed", "score": None, "note": None, "flag": True},
    "no_status": {"status": None, "score": 2, "note": "n", "flag": None},
    "empty": {"status": None, "score": None, "note": None, "flag": None},
}

#: rule → the candidates it admits ("a comparison with a missing value is false", ``!=``
#: treats null as a value, ``not`` negates that two-valued result).
RULES: dict[str, set[str]] = {
    "status in ['open', 'pending'] and score >= 10": {"open_high", "pending_high"},
    "status = 'open' or score is null": {"open_high", "open_low", "closed_none", "empty"},
    "note is null and score in [5, 10]": {"open_low", "pending_high"},
    "(status = 'closed' or note is not null) and not (score < 10)": {
        "open_high",
        "closed_high",
        "closed_none",
    },
    "not (status = 'closed')": {"open_high", "open_low", "pending_high", "no_status", "empty"},
    "status != 'closed' and not flag": {"open_low", "pending_high", "no_status", "empty"},
    "status not in ['open'] or flag = false": {
        "open_low",
        "pending_high",
        "closed_high",
        "closed_none",
        "no_status",
        "empty",
    },
    "status is not null and (note contains 'N' or not (score >= 1 and score <= 15))": {
        "open_high",
        "closed_high",
        "closed_none",
    },
}


@pytest.mark.parametrize("rule", list(RULES))
async def test_rule_agrees_between_list_and_create(api: Api, rule: str) -> None:
    await api.create_collection(
        "tasks",
        [
            {"name": "status", "type": "string"},
            {"name": "score", "type": "integer"},
            {"name": "note", "type": "string"},
            {"name": "flag", "type": "boolean"},
        ],
    )
    ids = {name: (await api.create("tasks", values))["id"] for name, values in CANDIDATES.items()}
    await api.set_policies("tasks", list=rule, create=rule)
    user = await api.user("tester@example.com")
    records = api.url("/collections/tasks/records")

    listed = await api.client.get(records, params={"limit": 200}, headers=user)
    assert listed.status_code == 200, listed.text
    by_id = {record_id: name for name, record_id in ids.items()}
    visible = {by_id[row["id"]] for row in listed.json()["data"]}

    creatable = set()
    for name, values in CANDIDATES.items():
        response = await api.client.post(records, json=values, headers=user)
        assert response.status_code in (201, 403), response.text
        if response.status_code == 201:
            creatable.add(name)
        else:
            assert error_code(response) == "policy_denied"

    assert visible == RULES[rule], "SQL (list)"
    assert creatable == RULES[rule], "Python (create)"


# -- invalid rules ----------------------------------------------------------------------

VALID = {
    "list": "",
    "read": OWNER_RULE,
    "create": OWNER_RULE,
    "update": OWNER_RULE,
    "delete": None,
}
INVALID = {
    "bad_syntax": ("list", "owner = = 1"),
    "unclosed": ("read", "(owner = 1"),
    "unknown_field": ("read", "nosuch = 1"),
    "unknown_auth_attribute": ("create", "owner = @auth.password"),
    "unsupported_operator": ("update", "owner contains '1'"),
    "value_of_wrong_type": ("update", "owner = 'lots'"),
    "too_deep": ("delete", "(" * 40 + "owner = 1" + ")" * 40),
    "too_long": ("list", "title = '" + "x" * 4000 + "'"),
}


@pytest.mark.parametrize("case", list(INVALID))
async def test_invalid_rule_is_refused_naming_the_action(api: Api, case: str) -> None:
    action, rule = INVALID[case]
    await api.create_collection(
        "docs", [{"name": "owner", "type": "integer"}, {"name": "title", "type": "string"}]
    )
    await api.set_policies("docs", **VALID)

    response = await api.client.put(
        api.url("/collections/docs/policies"),
        json={**VALID, action: rule},
        headers=api.headers,
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(error["field"], error["code"]) for error in errors] == [(action, "invalid_expression")]
    assert await policies_of(api, "docs") == VALID


async def test_every_bad_action_is_named(api: Api) -> None:
    await api.create_collection("docs", [{"name": "owner", "type": "integer"}])
    response = await api.client.put(
        api.url("/collections/docs/policies"),
        json={"list": "owner >", "read": "", "delete": "ghost is null"},
        headers=api.headers,
    )
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["list", "delete"]
    assert await policies_of(api, "docs") == dict.fromkeys(
        ("list", "read", "create", "update", "delete")
    )


async def test_only_admins_set_policies(api: Api) -> None:
    await api.create_collection("docs", [{"name": "owner", "type": "integer"}])
    user = await api.user("sneaky@example.com")
    key = await api.key(["records:read", "records:write"])
    for headers in (user, key):
        response = await api.client.put(
            api.url("/collections/docs/policies"), json={"list": ""}, headers=headers
        )
        assert response.status_code == 403, response.text
    anonymous = await api.client.put(api.url("/collections/docs/policies"), json={"list": ""})
    assert anonymous.status_code == 401
    assert (await policies_of(api, "docs"))["list"] is None


# -- bad credentials --------------------------------------------------------------------


def expired_token(project: str) -> str:
    now = int(time.time())
    claims = {
        "sub": "1",
        "kind": "user",
        "role": "user",
        "project": project,
        "iat": now - 7200,
        "exp": now - 3600,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


def forged_token(project: str) -> str:
    claims = {"sub": "1", "kind": "admin", "exp": int(time.time()) + 3600}
    return jwt.encode(claims, "not-the-secret-key-of-this-server", algorithm="HS256")


BAD_CREDENTIALS = {
    "garbage_bearer": (lambda p: {"Authorization": "Bearer not-a-jwt"}, "invalid_token"),
    "expired_token": (lambda p: {"Authorization": f"Bearer {expired_token(p)}"}, "token_expired"),
    "forged_token": (lambda p: {"Authorization": f"Bearer {forged_token(p)}"}, "invalid_token"),
    "wrong_scheme": (lambda p: {"Authorization": "Basic YWRtaW46YWRtaW4="}, "invalid_token"),
    "unknown_api_key": (lambda p: {"X-API-Key": "tsk_unknown"}, "invalid_api_key"),
}


@pytest.mark.parametrize("case", list(BAD_CREDENTIALS))
async def test_bad_credentials_are_refused_on_an_open_collection(api: Api, case: str) -> None:
    make_headers, code = BAD_CREDENTIALS[case]
    await api.create_collection("public", [{"name": "text", "type": "string"}])
    await api.set_policies("public", list="", read="", create="", update="", delete="")
    records = api.url("/collections/public/records")
    assert (await api.client.get(records)).status_code == 200

    headers = make_headers(api.project)
    listed = await api.client.get(records, headers=headers)
    assert listed.status_code == 401, listed.text
    assert error_code(listed) == code
    created = await api.client.post(records, json={"text": "x"}, headers=headers)
    assert created.status_code == 401
    assert error_code(created) == code
    assert (await api.client.get(records, headers=api.headers)).json()["data"] == []
