"""The API & Usage tab: how to call a view, from its meta (``GET .../views/{v}/meta``).

Endpoint, auth methods, parameters, filtering, sorting and pagination, the response's
fields, and the meta's examples with copy buttons that put exactly that text on the
clipboard (the admin's ``data-copy`` widget).
"""

from __future__ import annotations

from typing import Any

from plugins.views.form import value_text
from plugins.views.markup import e, grid

#: The examples, in the order shown: key in ``meta["examples"]``, title, element id.
EXAMPLES = (
    ("curl", "cURL", "example-curl"),
    ("fetch", "fetch (TypeScript)", "example-fetch"),
    ("axios", "axios", "example-axios"),
    ("postman_url", "Postman (the request URL; add the X-API-Key header)", "example-postman"),
)


def _copyable(element_id: str, text: str, label: str) -> str:
    return (
        f'<div class="copyable"><pre id="{element_id}" class="example">{e(text)}</pre>'
        f'<button type="button" class="button button-small" data-copy="#{element_id}" '
        f'aria-label="Copy {e(label)}">Copy {e(label)}</button></div>'
    )


def _auth(meta: dict[str, Any], collections: list[str]) -> str:
    rows = []
    for method in meta["auth"]:
        if method["type"] == "bearer":
            rows.append(
                [
                    "JWT (a project user, or an admin)",
                    f"<code>{e(method['header'])}: {e(method['format'])}</code>",
                    "the collections' read policies and row rules decide the rows",
                ]
            )
        else:
            rows.append(
                [
                    "API key",
                    f"<code>{e(method['header'])}: &lt;key&gt;</code>",
                    f"scope <code>{e(method['scope'])}</code>; a key limited to collections "
                    f"needs {', '.join(f'<code>{e(c)}</code>' for c in collections)}",
                ]
            )
    return grid(["Method", "Header", "Needs"], rows, "")


def _params(meta: dict[str, Any]) -> str:
    rows = [
        [
            f"<code>{e(p['name'])}</code>",
            e(p["type"]),
            "required" if p["required"] else "optional",
            f"<code>{e(value_text(p['example']))}</code>",
            e(value_text(p.get("default"))),
            e(p.get("description", "")),
        ]
        for p in meta["params"]
    ]
    return grid(
        ["Name", "Type", "", "Example", "Default", "Description"],
        rows,
        "This view takes no parameters.",
    )


def usage_tab(meta: dict[str, Any], collections: list[str]) -> str:
    """The tab's body for ``meta``; ``collections`` are those the view reads."""
    filters = grid(
        ["Field", "Type", "Operators"],
        [
            [f"<code>{e(f['field'])}</code>", e(f["type"]), e(", ".join(f["operators"]))]
            for f in meta["filters"]
        ],
        "",
    )
    pagination = meta["pagination"]
    sort = meta["sort"]
    examples = "".join(
        f"<h3>{e(title)}</h3>{_copyable(element, meta['examples'][key], title.split(' ')[0])}"
        for key, title, element in EXAMPLES
    )
    fields = ", ".join(
        f"<code>{e(name)}</code> ({e(kind)})" for name, kind in meta["response"]["fields"].items()
    )
    return (
        '<section class="panel" data-usage><h2>Endpoint</h2>'
        + _copyable("view-endpoint", meta["url_template"], "URL")
        + f'<p><span class="badge badge-info">{e(meta["method"])}</span> read-only: '
        "other methods answer 405.</p>"
        "<h2>Authentication</h2>" + _auth(meta, collections) + "<h2>Parameters</h2>"
        "<p>Passed as query parameters; a missing required one or a wrong type is a 400 "
        "naming it.</p>" + _params(meta) + "<h2>Filtering</h2>"
        "<p>On top of the view's own filters: <code>filter[field][op]=value</code> "
        "(<code>filter[field]=value</code> means <code>eq</code>); <code>in</code> takes "
        "<code>a,b,c</code>, <code>between</code> takes <code>low,high</code>.</p>"
        + filters
        + "<h2>Sorting</h2>"
        f"<p><code>sort=field:asc</code> or <code>:desc</code>, comma-separated, over: "
        f"{', '.join(f'<code>{e(name)}</code>' for name in sort['fields'])}. "
        f"Default: <code>{e(sort['default'] or 'id:asc')}</code>.</p>"
        "<h2>Pagination</h2>"
        f"<p><code>limit</code> is {e(pagination['default_limit'])} by default, at most "
        f"{e(pagination['max_limit'])}. Each page's <code>page.next_cursor</code> goes in "
        "<code>cursor=</code> for the next page; it is <code>null</code> on the last.</p>"
        f'<h2>Response</h2><p><code>{{"data": [...], "page": {{"limit", '
        f'"next_cursor"}}}}</code>; each row has {fields}.</p>'
        "<h2>Examples</h2><p>They read the API key from <code>$TESSERA_API_KEY</code> and "
        "use each parameter's example.</p>" + examples + "</section>"
    )
