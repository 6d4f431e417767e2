"""``FieldTypeContract``: what every field type must do (see :class:`kernel.FieldType`)."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import jsonschema
import orjson
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from kernel.catalog.model import ProjectCatalog, ProjectDef, ProjectSettings
from kernel.fields import FieldPlacement, FieldType, FieldValueError, RenderContext

_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


def wire(value: Any) -> Any:
    """A JSON output value as a client receives it (through orjson, as the API sends it)."""
    return orjson.loads(orjson.dumps(value))


def async_url(url: str) -> str:
    """A PostgreSQL URL for SQLAlchemy's asyncpg driver."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+asyncpg://", url)


class FieldTypeContract:
    """Subclass and set:

    - ``field_type``: an instance bound to the options under test (``MyType(options)``);
    - ``valid_values``: JSON values from a request body the type accepts (at least one);
    - ``invalid_values``: JSON values it refuses with :class:`FieldValueError`;
    - ``text_values``: ``(query-string text, JSON value it means)`` pairs; required when
      the type supports an operator that takes a value (anything but ``is_null``);

    and provide the fixture ``database_url`` (a PostgreSQL URL; each test works in a
    schema of its own inside a transaction that is rolled back). Override
    :meth:`prepare_schema` to create what the type's extra DDL references (the target
    table of a foreign key), :meth:`placement` when the DDL consults the catalog (the
    column under test is ``value`` of table ``contract``), and the fixture
    ``render_context`` when batch output needs a running kernel.
    """

    field_type: ClassVar[FieldType]
    valid_values: ClassVar[list[Any]] = []
    invalid_values: ClassVar[list[Any]] = []
    text_values: ClassVar[list[tuple[str, Any]]] = []

    def prepare_schema(self, ops: Operations, schema: str) -> None:
        """Create what the field's extra DDL needs in ``schema`` (nothing by default); it
        may add rows to ``contract`` (ids from the number of samples up: a record the
        samples reference)."""

    def placement(self, schema: str) -> FieldPlacement:
        """Where the field under test is created: an empty project catalog whose schema is
        ``schema``, collection ``contract``, field ``value``."""
        now = datetime.now(UTC)
        project = ProjectDef("contract", "contract", schema, 1, ProjectSettings(), now, now)
        catalog = ProjectCatalog(project, {}, ())
        return FieldPlacement(catalog, "contract", "value", required=False, where="field")

    @pytest.fixture
    def render_context(self) -> RenderContext:
        return RenderContext(tessera=None, project_id="contract", collection="c", principal=None)

    @pytest.fixture
    async def scratch(self, database_url: str) -> AsyncIterator[tuple[AsyncConnection, str]]:
        """A connection inside a transaction (rolled back after the test) and a new schema."""
        engine = create_async_engine(async_url(database_url), poolclass=sa.NullPool)
        schema = f"contract_{secrets.token_hex(4)}"
        try:
            async with engine.connect() as conn:
                transaction = await conn.begin()
                await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
                yield conn, schema
                await transaction.rollback()
        finally:
            await engine.dispose()

    def coerced(self) -> list[Any]:
        return [self.field_type.coerce(value) for value in self.valid_values]

    def test_name_and_label_are_set(self) -> None:
        kind = type(self.field_type)
        assert _CODE.match(kind.name), f"{kind.name!r} is not a valid type name"
        assert isinstance(kind.label, str) and kind.label

    def test_there_are_samples(self) -> None:
        assert self.valid_values, "give at least one valid value"
        assert self.invalid_values, "give at least one invalid value"

    def test_valid_values_survive_a_trip_through_json(self) -> None:
        for value, stored in zip(self.valid_values, self.coerced(), strict=True):
            again = self.field_type.coerce(wire(self.field_type.to_json(stored)))
            assert again == stored, f"{value!r} came back as {again!r}"

    def test_invalid_values_are_refused_with_a_code_and_a_message(self) -> None:
        for value in self.invalid_values:
            with pytest.raises(FieldValueError) as refused:
                self.field_type.coerce(value)
            assert _CODE.match(refused.value.code), refused.value.code
            assert refused.value.message

    def test_output_matches_the_json_schema(self) -> None:
        validator = jsonschema.Draft202012Validator(self.field_type.json_schema())
        for stored in self.coerced():
            validator.validate(wire(self.field_type.to_json(stored)))

    def test_text_values_mean_what_their_json_means(self) -> None:
        takes_values = self.field_type.operators - {"is_null"}
        if takes_values:
            assert self.text_values, f"operators {sorted(takes_values)} need text_values"
        for raw, value in self.text_values:
            assert self.field_type.parse_text(raw) == self.field_type.coerce(value), raw

    async def test_batch_output_gives_one_value_per_input_in_order(
        self, render_context: RenderContext
    ) -> None:
        stored = self.coerced()
        rendered = await self.field_type.to_json_many(stored, render_context)
        assert isinstance(rendered, list) and len(rendered) == len(stored)
        if not type(self.field_type).batches_json():
            assert rendered == [self.field_type.to_json(value) for value in stored]
        assert wire(rendered) is not None

    async def test_values_round_trip_through_a_postgresql_column(self, scratch) -> None:
        conn, schema = scratch
        table = sa.Table(
            "contract",
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("value", self.field_type.sql_type()),
            schema=schema,
        )
        await conn.run_sync(table.create)
        await self._run_ddl(conn, lambda ops: self.prepare_schema(ops, schema))
        steps = self.field_type.extra_ddl(schema, "contract", "value", self.placement(schema))
        await self._run_ddl(conn, lambda ops: [step.run(ops) for step in steps])
        stored = self.coerced()
        await conn.execute(
            table.insert(), [{"id": n, "value": value} for n, value in enumerate(stored)]
        )
        samples = sa.select(table.c.value).where(table.c.id < len(stored)).order_by(table.c.id)
        assert list((await conn.execute(samples)).scalars()) == stored

    @staticmethod
    async def _run_ddl(conn: AsyncConnection, run: Callable[[Operations], Any]) -> None:
        await conn.run_sync(lambda sync: run(Operations(MigrationContext.configure(sync))))
