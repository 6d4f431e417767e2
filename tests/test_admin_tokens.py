"""An admin's tokens stop working in every process once the admin is deleted or their
password changes, through the kernel (``IdentityService``) or the ``tessera`` command:
cached tokens are evicted over the bus, and a token is tied to the password it was issued
under, so verifying it again refuses it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from kernel.config import Settings
from kernel.errors import Conflict, NotFound, ValidationFailed
from kernel.runtime import Tessera
from kernel.security.principal import Principal
from kernel.security.tokens import TokenService
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, running, unique_id
from tests.server import run_tessera, tessera_env
from tests.test_catalog_cache import eventually
from tests.test_token_cache import bearer, error_code, resolver_of

PASSWORD = "admin-password-1"
NEW_PASSWORD = "admin-password-2"


def tessera_of(client: httpx.AsyncClient) -> Tessera:
    return client.app.state.tessera  # type: ignore[attr-defined]


async def new_admin(client: httpx.AsyncClient) -> str:
    """A fresh admin (the session's own admin stays untouched); their email."""
    email = f"{unique_id('admin')}@tessera.test"
    await tessera_of(client).identity.create_admin(email, PASSWORD)
    return email


async def signed_in(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await client.post("/api/admin/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def cached_everywhere(headers: dict[str, str], *clients: httpx.AsyncClient) -> None:
    for client in clients:
        assert (await client.get("/api/projects", headers=headers)).status_code == 200
        assert resolver_of(client).cached(bearer(headers)) is not None


async def refused(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    response = await client.get("/api/projects", headers=headers)
    return response.status_code == 401 and error_code(response) == "token_revoked"


async def test_changing_an_admins_password_revokes_their_tokens_in_every_process(
    make_settings: Callable[..., Settings],
) -> None:
    async with running(make_settings()) as a, running(make_settings()) as b:
        email = await new_admin(a)
        old = await signed_in(a, email, PASSWORD)
        await cached_everywhere(old, a, b)

        await tessera_of(a).identity.set_admin_password(email, NEW_PASSWORD)

        assert await refused(a, old)
        await eventually(lambda: refused(b, old))
        for client in (a, b):
            assert resolver_of(client).cached(bearer(old)) is None
        wrong = await a.post("/api/admin/login", json={"email": email, "password": PASSWORD})
        assert wrong.status_code == 401
        new = await signed_in(a, email, NEW_PASSWORD)
        await cached_everywhere(new, a, b)


async def test_deleting_an_admin_revokes_their_tokens_in_every_process(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    async with running(make_settings()) as a, running(make_settings()) as b:
        email = await new_admin(a)
        headers = await signed_in(a, email, PASSWORD)
        await cached_everywhere(headers, a, b)

        await tessera_of(a).identity.delete_admin(email)

        assert await refused(a, headers)
        await eventually(lambda: refused(b, headers))
        gone = await a.post("/api/admin/login", json={"email": email, "password": PASSWORD})
        assert gone.status_code == 401
        # Other admins' tokens are not touched.
        await cached_everywhere(admin_headers, a, b)


async def test_refused_admin_changes_change_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    identity = tessera_of(client).identity
    email = await new_admin(client)
    headers = await signed_in(client, email, PASSWORD)
    with pytest.raises(ValidationFailed):
        await identity.set_admin_password(email, "short")
    with pytest.raises(NotFound) as missing:
        await identity.set_admin_password("nobody@tessera.test", NEW_PASSWORD)
    assert missing.value.items[0].code == "admin_not_found"
    with pytest.raises(NotFound):
        await identity.delete_admin("nobody@tessera.test")
    assert (await client.get("/api/projects", headers=headers)).status_code == 200
    assert resolver_of(client).cached(bearer(headers)) is not None
    await signed_in(client, email, PASSWORD)


async def test_the_only_admin_cannot_be_deleted(
    make_settings: Callable[..., Settings], jobs_db: str
) -> None:
    async with running(make_settings(database_url=jobs_db)) as client:
        headers = await signed_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        with pytest.raises(Conflict) as refusal:
            await tessera_of(client).identity.delete_admin(ADMIN_EMAIL)
        assert refusal.value.items[0].code == "last_admin"
        assert (await client.get("/api/projects", headers=headers)).status_code == 200


async def test_an_admin_token_without_a_password_stamp_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Tokens issued before stamps existed (or forged without one) are not honoured."""
    admin = await tessera_of(client).resolve_token(bearer(admin_headers))
    principal = Principal(kind="admin", id=admin.id, role="admin", email=admin.email)
    unstamped = TokenService(tessera_of(client).secret_key, ttl_seconds=3600).issue(principal)
    assert await refused(client, {"Authorization": f"Bearer {unstamped}"})
    assert resolver_of(client).cached(unstamped) is None


async def test_the_admin_commands_revoke_tokens_in_running_processes(
    make_settings: Callable[..., Settings], database_url: str, tmp_path: Path
) -> None:
    env = tessera_env(TESSERA_DATABASE_URL=database_url, TESSERA_DATA_DIR=str(tmp_path))
    async with running(make_settings()) as app:
        email = await new_admin(app)
        headers = await signed_in(app, email, PASSWORD)
        await cached_everywhere(headers, app)

        changed = run_tessera(
            ["admin", "set-password", "--email", email, "--password", NEW_PASSWORD], env
        )
        assert changed.returncode == 0, changed.stderr
        assert f"admin {email}: password changed" in changed.stdout
        await eventually(lambda: refused(app, headers))

        headers = await signed_in(app, email, NEW_PASSWORD)
        await cached_everywhere(headers, app)
        deleted = run_tessera(["admin", "delete", "--email", email], env)
        assert deleted.returncode == 0, deleted.stderr
        await eventually(lambda: refused(app, headers))

        again = run_tessera(["admin", "delete", "--email", email], env)
        assert again.returncode == 1
        assert f"no admin with email {email}" in again.stderr
        assert "Traceback" not in again.stderr
