"""``include``: records a page links to, expanded inline, one hop, policy-checked.

A field whose type declares a :class:`~kernel.fields.ForeignKey` can be included by name
(``include=customer`` puts the referenced record under ``customer``); a foreign key's
``reverse`` name includes, on its target, the records pointing at each one
(``include=orders`` on a customer: a list, at most ``include_per_parent`` long). Each
include costs one query per page, whatever the page size. The included records are read
as the caller: the target's ``read`` (reverse: ``list``) policy and the key's collection
scope apply, and a record the caller may not read is ``null`` (a list leaves it out; a
collection the caller may not read at all is ``null``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kernel.catalog.model import CollectionDef, FieldDef, ProjectCatalog
from kernel.errors import BadRequest
from kernel.records.runtime import CollectionRuntime


@dataclass(frozen=True, slots=True)
class Include:
    """One requested include: the output key ``name``, the collection whose records it
    reads, the foreign-key field (on the page's collection when ``forward``, else on
    ``collection``)."""

    name: str
    collection: str
    field: FieldDef
    forward: bool


def resolve_includes(
    runtime: CollectionRuntime,
    catalog: ProjectCatalog,
    names: tuple[str, ...],
    max_includes: int,
) -> list[Include]:
    """The includes ``names`` ask of ``runtime``'s collection; a 400 naming ``include``
    for a path of more than one hop, too many names, or a name that is no foreign key
    of the collection and no reverse name pointing at it."""
    if len(names) > max_includes:
        raise BadRequest(
            f"at most {max_includes} includes per request",
            code="too_many_includes",
            field="include",
        )
    return [_resolve(runtime, catalog, name) for name in names]


def _resolve(runtime: CollectionRuntime, catalog: ProjectCatalog, name: str) -> Include:
    collection = runtime.collection
    if "." in name:
        raise BadRequest(
            f"include goes one hop only: {name!r} is a path; include "
            f"{name.partition('.')[0]!r} and read the rest from its collection",
            code="nested_include",
            field="include",
        )
    resolved = runtime.resolve(name)
    if resolved is not None:
        field = resolved[0]
        key = field.type.foreign_key() if field.type is not None else None
        if key is not None:
            return Include(field.name, key.target, field, forward=True)
    for include in _reverse_includes(catalog, collection.name):
        if include.name == name:
            return include
    raise BadRequest(
        f"{collection.name!r} has no relation named {name!r}",
        code="unknown_include",
        field="include",
    )


def includable(catalog: ProjectCatalog, collection: CollectionDef) -> list[Include]:
    """Every include ``collection`` offers: its foreign keys, then the reverse names of
    the foreign keys pointing at it (for the project's OpenAPI document)."""
    forward = [
        Include(field.name, key.target, field, forward=True)
        for field in collection.live_fields.values()
        if (key := field.type.foreign_key()) is not None
    ]
    return forward + list(_reverse_includes(catalog, collection.name))


def _reverse_includes(catalog: ProjectCatalog, target: str) -> Iterator[Include]:
    for other in catalog.live_collections.values():
        for field in other.live_fields.values():
            key = field.type.foreign_key() if field.type is not None else None
            if key is not None and key.target == target and key.reverse is not None:
                yield Include(key.reverse, other.name, field, forward=False)
