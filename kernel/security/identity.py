"""Admins and project users: sign-up, sign-in, the first admin, listing admins, and changing
or removing an admin (which revokes the admin's tokens in every process)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from kernel.audit import record_audit
from kernel.db.schema import admins, project_users
from kernel.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from kernel.security.passwords import (
    DUMMY_HASH,
    check_password_strength,
    hash_password,
    verify_password,
)
from kernel.security.principal import ANONYMOUS, END_USER_SCOPES, Principal
from kernel.security.token_cache import ADMINS_CHANNEL

if TYPE_CHECKING:
    from kernel.runtime import Tessera

log = logging.getLogger(__name__)

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
#: Who audit logs name for a change made with the ``tessera`` command.
COMMAND_LINE = Principal(kind="admin", name="tessera command line")


def normalise_email(email: object) -> str:
    if not isinstance(email, str) or not EMAIL.fullmatch(email.strip()):
        raise ValidationFailed("not a valid email address", code="invalid_email", field="email")
    return email.strip().lower()


class IdentityService:
    def __init__(self, tessera: Tessera) -> None:
        self.tessera = tessera

    # -- admins -----------------------------------------------------------------------

    async def create_admin(self, email: str, password: str, actor: Principal | None = None) -> int:
        email = normalise_email(email)
        check_password_strength(password)
        password_hash = await hash_password(password)
        try:
            async with self.tessera.db.engine.begin() as conn:
                admin_id = (
                    await conn.execute(
                        admins.insert()
                        .values(email=email, password_hash=password_hash)
                        .returning(admins.c.id)
                    )
                ).scalar_one()
                await record_audit(
                    conn,
                    actor=actor or Principal(kind="admin", id=admin_id, email=email),
                    action="admin.create",
                    target_type="admin",
                    target=email,
                    after={"id": admin_id, "email": email},
                )
        except IntegrityError:
            raise Conflict(
                f"an admin with email {email} exists", code="duplicate", field="email"
            ) from None
        return admin_id

    async def has_admin(self) -> bool:
        """Whether any admin exists (until one does, the admin UI offers first-run setup)."""
        async with self.tessera.db.engine.connect() as conn:
            return bool(
                (await conn.execute(sa.select(sa.exists().select_from(admins)))).scalar_one()
            )

    async def ensure_first_admin(self) -> None:
        """Create the admin named by ``admin_email``/``admin_password`` if there is none."""
        settings = self.tessera.settings
        if not settings.admin_email or settings.admin_password is None:
            return
        if await self.has_admin():
            return
        try:
            await self.create_admin(
                settings.admin_email, settings.admin_password.get_secret_value()
            )
            log.info("created the first admin, %s", settings.admin_email)
        except Conflict:
            pass  # another worker created it first

    async def admin_login(self, email: Any, password: Any) -> dict[str, Any]:
        email = normalise_email(email)
        async with self.tessera.db.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(admins).where(admins.c.email == email))
            ).one_or_none()
        if (
            not await verify_password(row.password_hash if row else DUMMY_HASH, str(password))
            or row is None
        ):
            raise Unauthorized("wrong email or password", code="invalid_credentials")
        async with self.tessera.db.engine.begin() as conn:
            await conn.execute(
                admins.update().where(admins.c.id == row.id).values(last_login_at=datetime.now(UTC))
            )
        return self._signed_in(row.id, row.email, row.password_hash)

    def _signed_in(self, admin_id: int, email: str, password_hash: str) -> dict[str, Any]:
        """What a sign-in answers: a token stamped with ``password_hash``, and the admin."""
        principal = Principal(kind="admin", id=admin_id, role="admin", email=email)
        return {
            "token": self.tessera.tokens.issue(principal, credential=password_hash),
            "admin": {"id": admin_id, "email": email},
        }

    async def list_admins(self) -> list[dict[str, Any]]:
        """Every admin, by email: ``id``, ``email``, ``created_at`` and ``last_login_at``
        (``None`` until their first sign-in). Never their password hash."""
        statement = sa.select(
            admins.c.id, admins.c.email, admins.c.created_at, admins.c.last_login_at
        ).order_by(admins.c.email)
        async with self.tessera.db.engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(statement)]

    async def set_admin_password(
        self, email: str, password: str, actor: Principal = COMMAND_LINE
    ) -> int:
        """Give the admin ``email`` a new password and revoke every token issued before it,
        in every process; the admin's id. :class:`NotFound` (``admin_not_found``) when no
        such admin exists, :class:`ValidationFailed` for a weak password."""
        return (await self._store_password(email, password, actor))[0]

    async def change_own_admin_password(
        self, admin: Principal, current_password: object, new_password: object
    ) -> dict[str, Any]:
        """The signed-in ``admin`` changes their own password.

        ``current_password`` must be theirs (:class:`ValidationFailed` ``wrong_password`` on
        ``current_password``); the new one follows the rules of :meth:`set_admin_password`,
        which makes the change the same way (audited as ``admin.password``, every token of
        theirs revoked in every process). Answers as :meth:`admin_login` does, with a fresh
        token for the new password, so the session that asked keeps working.
        :class:`NotFound` (``admin_not_found``) when the admin was deleted meanwhile.
        """
        check_password_strength(new_password)
        async with self.tessera.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(admins.c.email, admins.c.password_hash).where(admins.c.id == admin.id)
                )
            ).one_or_none()
        if row is None:
            raise NotFound("this admin no longer exists", code="admin_not_found")
        if not await verify_password(row.password_hash, str(current_password)):
            raise ValidationFailed(
                "the current password is wrong", code="wrong_password", field="current_password"
            )
        admin_id, password_hash = await self._store_password(
            row.email, str(new_password), actor=admin
        )
        return self._signed_in(admin_id, row.email, password_hash)

    async def _store_password(self, email: str, password: str, actor: Principal) -> tuple[int, str]:
        """Set and audit the new password of admin ``email``, then revoke their tokens; the
        admin's id and new password hash."""
        email = normalise_email(email)
        check_password_strength(password)
        password_hash = await hash_password(password)
        async with self.tessera.db.engine.begin() as conn:
            admin_id = (
                await conn.execute(
                    admins.update()
                    .where(admins.c.email == email)
                    .values(password_hash=password_hash)
                    .returning(admins.c.id)
                )
            ).scalar_one_or_none()
            if admin_id is None:
                raise NotFound(f"no admin with email {email}", code="admin_not_found")
            await record_audit(
                conn, actor=actor, action="admin.password", target_type="admin", target=email
            )
        await self.revoke_admin_tokens(admin_id)
        return admin_id, password_hash

    async def delete_admin(self, email: str, actor: Principal = COMMAND_LINE) -> int:
        """Delete the admin ``email`` and revoke their tokens in every process; their id.
        :class:`NotFound` (``admin_not_found``) when no such admin exists,
        :class:`Conflict` (``last_admin``) for the only admin left, and
        :class:`Conflict` (``self_delete``) when ``actor`` is that admin: another admin (or
        the ``tessera`` command) removes an account, so nobody locks themselves out."""
        email = normalise_email(email)
        async with self.tessera.db.engine.begin() as conn:
            # Locking every admin row makes two concurrent deletes of the last two wait in
            # turn, so the second one sees that only one admin is left.
            ids_by_email = {
                row.email: row.id
                for row in await conn.execute(
                    sa.select(admins.c.id, admins.c.email).with_for_update()
                )
            }
            if email not in ids_by_email:
                raise NotFound(f"no admin with email {email}", code="admin_not_found")
            if len(ids_by_email) == 1:
                raise Conflict(
                    f"{email} is the only admin; create another before deleting it",
                    code="last_admin",
                )
            if actor.is_admin and actor.id == ids_by_email[email]:
                raise Conflict(
                    "you cannot delete your own account; another admin can",
                    code="self_delete",
                )
            await conn.execute(admins.delete().where(admins.c.id == ids_by_email[email]))
            await record_audit(
                conn,
                actor=actor,
                action="admin.delete",
                target_type="admin",
                target=email,
                before={"id": ids_by_email[email], "email": email},
            )
        await self.revoke_admin_tokens(ids_by_email[email])
        return ids_by_email[email]

    async def revoke_admin_tokens(self, admin_id: int) -> None:
        """Forget the admin's cached tokens here at once and in every other process over
        the bus; each is then verified again, and refused, on its next use."""
        self.tessera.token_cache.evict_admin(str(admin_id))
        await self.tessera.bus.publish(ADMINS_CHANNEL, str(admin_id))

    # -- project users ------------------------------------------------------------------

    async def signup(
        self, project_id: str, email: Any, password: Any, principal: Principal
    ) -> dict[str, Any]:
        catalog = await self.tessera.catalog.get(project_id)
        if not catalog.project.settings.allow_signup and not principal.is_admin:
            raise Forbidden("sign-up is closed for this project", code="signup_closed")
        email = normalise_email(email)
        check_password_strength(password)
        password_hash = await hash_password(password)
        try:
            async with self.tessera.db.engine.begin() as conn:
                row = (
                    await conn.execute(
                        project_users.insert()
                        .values(project_id=project_id, email=email, password_hash=password_hash)
                        .returning(
                            project_users.c.id, project_users.c.role, project_users.c.created_at
                        )
                    )
                ).one()
                user = {
                    "id": row.id,
                    "email": email,
                    "role": row.role,
                    "created_at": row.created_at,
                }
                await record_audit(
                    conn,
                    actor=principal
                    if principal is not ANONYMOUS
                    else _self(project_id, row.id, email),
                    project_id=project_id,
                    action="user.create",
                    target_type="user",
                    target=email,
                    after=user,
                )
        except IntegrityError:
            raise Conflict(
                "this email is already registered", code="duplicate", field="email"
            ) from None
        return user

    async def login(self, project_id: str, email: Any, password: Any) -> dict[str, Any]:
        await self.tessera.catalog.get(project_id)
        email = normalise_email(email)
        async with self.tessera.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(project_users).where(
                        project_users.c.project_id == project_id, project_users.c.email == email
                    )
                )
            ).one_or_none()
        if (
            not await verify_password(row.password_hash if row else DUMMY_HASH, str(password))
            or row is None
        ):
            raise Unauthorized("wrong email or password", code="invalid_credentials")
        async with self.tessera.db.engine.begin() as conn:
            await conn.execute(
                project_users.update()
                .where(project_users.c.id == row.id)
                .values(last_login_at=datetime.now(UTC))
            )
        principal = Principal(
            kind="user",
            id=row.id,
            project_id=project_id,
            role=row.role,
            email=row.email,
            scopes=END_USER_SCOPES,
        )
        return {
            "token": self.tessera.tokens.issue(principal),
            "user": {"id": row.id, "email": row.email, "role": row.role},
        }


def _self(project_id: str, user_id: int, email: str) -> Principal:
    return Principal(kind="user", id=user_id, project_id=project_id, email=email)
