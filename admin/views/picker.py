"""The record picker's data: a linked collection's records, searched and keyset-paged.

The record form's input for a link (a field whose type declares a foreign key) gets a
search box; as a person types, the script asks this route for 20 records whose display
field contains the text, and for the next 20 with the page's cursor — never the whole
collection. The records are read as the signed-in admin through the records API.
"""

from __future__ import annotations

from starlette.responses import Response

from admin.routing import admin_router
from admin.session import SessionDep
from admin.site import SiteDep
from kernel import TesseraError
from kernel.api.responses import json_response

router = admin_router()

PICK_PAGE = 20


@router.get("/p/{project_id}/c/{name}/pick")
async def pick_records(
    project_id: str,
    name: str,
    site: SiteDep,
    session: SessionDep,
    q: str = "",
    display: str = "",
    cursor: str = "",
) -> Response:
    """``{"data": [{"id", "label"}], "next_cursor"}``: records of ``name`` whose field
    ``display`` contains ``q`` (every record without ``q`` or ``display``), labelled by
    that field (by ``#id`` without it). A refused request answers the API's error body."""
    items = [("limit", str(PICK_PAGE))]
    if q and display:
        items.append((f"filter[{display}][contains]", q))
    if cursor:
        items.append(("cursor", cursor))
    try:
        outcome = await site.tessera.records.list(project_id, name, items, session.principal)
    except TesseraError as error:
        return json_response(error.body(), status_code=error.status)
    page = outcome.data
    choices = [
        {"id": record["id"], "label": str(record.get(display) or f"#{record['id']}")}
        for record in page["data"]
    ]
    return json_response({"data": choices, "next_cursor": page["page"]["next_cursor"]})
