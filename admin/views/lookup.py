"""Loading what a page shows: the project (permission-checked), its catalog, a collection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from admin.session import AdminSession
from admin.site import AdminSite
from kernel import AliasDef, CollectionDef, FieldDef, NotFound, ProjectCatalog


@dataclass(frozen=True, slots=True)
class ProjectView:
    """A project as the REST API describes it, with its current catalog."""

    project: dict[str, Any]
    catalog: ProjectCatalog

    @property
    def id(self) -> str:
        return self.project["id"]


async def load_project(site: AdminSite, session: AdminSession, project_id: str) -> ProjectView:
    """The project through ``tessera.projects.get`` (the API's checks: 404, 403), then its
    catalog confirmed fresh, so a change another process just made shows."""
    project = await site.tessera.projects.get(project_id, session.principal)
    catalog = await site.tessera.catalog.get(project_id, fresh=True)
    return ProjectView(project, catalog)


def find_collection(catalog: ProjectCatalog, name: str) -> tuple[CollectionDef, AliasDef | None]:
    """The live collection called ``name`` now, or reached through a live old name; 404
    otherwise."""
    resolved = catalog.resolve_collection(name, datetime.now(UTC))
    if resolved is None:
        raise NotFound(f"There is no collection {name!r} in this project.")
    return resolved


def find_field(collection: CollectionDef, name: str) -> tuple[FieldDef, AliasDef | None]:
    """The live field called ``name``, or reached through a live old name; 404 otherwise."""
    field = collection.live_fields.get(name)
    if field is not None:
        return field, None
    resolved = collection.live_field_aliases(datetime.now(UTC)).get(name)
    if resolved is None:
        raise NotFound(f"There is no field {name!r} in {collection.name!r}.")
    return resolved
