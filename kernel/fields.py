"""The ``FieldType`` base class: what a field-type plugin provides.

A field type turns JSON values into database values and back, names its SQL type, declares
the options a field of its type takes and the filter operators it supports. The kernel knows
no field type by name: every type, the core ones included, arrives through the
``register_field_types`` hook.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

if TYPE_CHECKING:
    from kernel.catalog.model import ProjectCatalog
    from kernel.ddl.operation import Step


class NoOptions(BaseModel):
    """Options model of a field type that takes none."""

    model_config = ConfigDict(extra="forbid")


class FieldValueError(ValueError):
    """A value a field type cannot accept; ``code`` is stable, ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ConversionContext(BaseModel):
    """What a type conversion may depend on: the project's time zone (IANA name)."""

    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What batch output (:meth:`FieldType.to_json_many`) may consult: the running kernel
    (``tessera.storage``, ``tessera.db`` ...), the project and collection the records
    belong to, and the principal reading them (a ``kernel.Principal``)."""

    tessera: Any
    project_id: str
    collection: str
    principal: Any


@dataclass(frozen=True, slots=True)
class FieldPlacement:
    """Where a new field is being created, for :meth:`FieldType.extra_ddl`: the project's
    catalog before the op, the collection's name (possibly one the op creates), the
    field's name and ``required``, and ``where``, the request path of the field's spec
    (``field``, ``fields[2]``) that errors name."""

    catalog: ProjectCatalog
    collection: str
    field: str
    required: bool
    where: str


#: What PostgreSQL does to referencing rows when a referenced record is deleted.
OnDelete = Literal["restrict", "cascade", "set_null"]


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """A field whose column holds the ``id`` of a record of collection ``target`` (current
    name), backed by a database foreign key with the action ``on_delete``.

    The kernel builds on it: ``include=<field>`` expands the referenced record, the
    optional ``reverse`` name expands on the target the records pointing at it, a delete
    that PostgreSQL cascades or nulls records an event per touched row, and a violated
    key is a 409/422 naming the field (:mod:`kernel.records.includes`)."""

    target: str
    on_delete: OnDelete = "restrict"
    reverse: str | None = None
    #: The target's field that stands for a linked record in the admin (``None``: its id).
    display: str | None = None


class FieldType(ABC):
    """Base class of field types.

    Class attributes a subclass sets:

    - ``name``: stored in the catalog; unique across plugins (a duplicate stops startup).
    - ``label``: shown in the admin UI's type picker.
    - ``Options``: pydantic model of the type's options, validated when a field is added;
      its JSON schema drives the admin options form. Defaults to :class:`NoOptions`.
    - ``operators``: names of the filter operators the type supports (``eq``, ``gt`` ...).
      An operator can also claim the type through its own ``field_types``.
    - ``widget``: the admin form widget (``text``, ``textarea``, ``number``, ``checkbox``,
      ``date``, ``datetime``, ``json``, or one a plugin's admin panel provides).
    - ``column_suffix``: appended to the field name to form the SQL column (``_id`` for
      relation and file fields), so ``customer`` is stored in ``customer_id``.
    - ``sortable``: whether lists may sort on the field.

    An instance is bound to one field's validated options: ``FieldType(options)``.
    Everything here runs on the request path and must be pure and fast.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = NoOptions
    operators: ClassVar[frozenset[str]] = frozenset()
    widget: ClassVar[str] = "text"
    column_suffix: ClassVar[str] = ""
    sortable: ClassVar[bool] = True

    def __init__(self, options: BaseModel | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @abstractmethod
    def sql_type(self) -> TypeEngine[Any]:
        """The SQLAlchemy type of the column for these options."""

    @abstractmethod
    def coerce(self, value: Any) -> Any:
        """Turn a JSON value from a request body into the value stored in the column.

        ``None`` never reaches this method (the kernel handles nulls and ``required``).
        Raises :class:`FieldValueError` with a stable code (``invalid_type``,
        ``max_length``...) when the value is not acceptable.
        """

    def parse_text(self, raw: str) -> Any:
        """Turn one value from a query string (a filter, a cursor) into a column value.

        Defaults to :meth:`coerce`; types whose JSON values are not strings (numbers,
        booleans) override it. Raises :class:`FieldValueError`.
        """
        return self.coerce(raw)

    def to_json(self, value: Any) -> Any:
        """Turn a column value into a JSON-serialisable value (orjson handles dates and times).

        The default returns the value unchanged; override only when it must change, since
        the kernel skips the call for types that keep this default.
        """
        return value

    async def to_json_many(self, values: Sequence[Any], context: RenderContext) -> list[Any]:
        """Turn the column values of one response (a page, or one record) into JSON at once.

        ``values`` holds no ``None``; the result has one value per input, in order. Override
        it when one value costs I/O that a batch can share (one query for the records a
        page includes, one signing round for a page of file URLs). The kernel calls it once
        per field per response for types that override it, and :meth:`to_json` per value
        for the others; the default here does just that.
        """
        return [self.to_json(value) for value in values]

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of a value of this field, used in the per-project OpenAPI."""
        return {}

    def extra_ddl(
        self, schema: str, table: str, column: str, placement: FieldPlacement
    ) -> list[Step]:
        """DDL steps beyond the column itself (a foreign key, an index), run right after the
        column is created, in the same transaction, and shown in the schema preview.

        ``schema.table.column`` is the new column; ``placement`` says where the field goes
        (the catalog, to find a referenced collection's table). Each step issues its DDL
        through Alembic's operations, e.g. ``Step("index on x", partial(create_my_index,
        schema, table, column))``. Raises :class:`kernel.errors.ValidationFailed` naming
        ``placement.where`` when the options do not fit the catalog (an unknown target).
        The default adds nothing.
        """
        return []

    def foreign_key(self) -> ForeignKey | None:
        """The record this field's value references, if it is a reference (``None``: a
        plain value, the default). See :class:`ForeignKey`."""
        return None

    def convert_to(
        self, target: FieldType, column: ColumnElement[Any], context: ConversionContext
    ) -> ColumnElement[Any] | None:
        """The SQL expression that converts ``column`` (of this type) to ``target`` in place.

        Return ``None`` when the conversion is not safe, i.e. when some value could fail or
        lose information; the kernel then offers the copy-and-swap wizard instead. The
        expression is used as ``ALTER COLUMN ... TYPE ... USING <expression>``.
        """
        return None

    def convert_value(self, value: Any, target: FieldType) -> Any:
        """Convert one stored value to ``target``'s type for the copy-and-swap wizard.

        The default goes through JSON, ``target.coerce(self.to_json(value))``, and reads
        text the way a query string is read (``"42"`` becomes an integer). Raises
        :class:`FieldValueError` for a value that cannot be converted.
        """
        as_json = self.to_json(value)
        try:
            return target.coerce(as_json)
        except FieldValueError:
            if isinstance(as_json, str):
                return target.parse_text(as_json)
            raise

    @classmethod
    def keeps_json(cls) -> bool:
        """True when :meth:`to_json` is the identity, so output can skip it."""
        return cls.to_json is FieldType.to_json

    @classmethod
    def batches_json(cls) -> bool:
        """True when the type overrides :meth:`to_json_many`, so output calls it per batch."""
        return cls.to_json_many is not FieldType.to_json_many
