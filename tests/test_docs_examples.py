"""The shell examples of README.md and docs/api.md work when pasted: each document's ``sh``
blocks that talk to the server run in order, in one bash, against a live ``tessera serve``.

Only the address and the admin's credentials are put in; everything else runs as written.
``curl`` fails on an HTTP error status (``--fail-with-body``), and the script stops at the
first failing command, so a request the server refuses fails the test, and so does one
that curl cannot send (``filter[...]`` without ``-g`` is ``curl: (3) bad range``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.server import REPO, TesseraServer, tessera_env

#: What the documents say, and what the test server uses instead.
DOCUMENTED = {
    "localhost:8000": None,  # the test server's address
    "you@example.com": ADMIN_EMAIL,
    "change-me-now": ADMIN_PASSWORD,
}
#: The project the documents build; the test removes it before and after each document.
PROJECT = "shop"
#: curl prints the body of an error response, then fails.
PRELUDE = 'set -euo pipefail\nshopt -s inherit_errexit\ncurl() { command curl --fail-with-body "$@" && echo; }\n'
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)


def server_examples(document: Path) -> list[str]:
    """The ``sh`` blocks of ``document`` that send requests to the server."""
    return [block for block in SH_BLOCK.findall(document.read_text()) if "localhost:8000" in block]


def json_documents(output: str) -> list[Any]:
    """Every JSON value printed, in order (curl prints bodies one after another)."""
    decoder = json.JSONDecoder()
    values, index = [], 0
    while (index := _skip_space(output, index)) < len(output):
        value, index = decoder.raw_decode(output, index)
        values.append(value)
    return values


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    for tool in ("bash", "curl", "jq"):
        assert shutil.which(tool), f"{tool} is needed (make test installs jq)"
    env = tessera_env(
        TESSERA_DATABASE_URL=database_url,
        TESSERA_DATA_DIR=str(tmp_path_factory.mktemp("docs")),
        TESSERA_SECRET_KEY="docs-examples-secret",
        TESSERA_ADMIN_EMAIL=ADMIN_EMAIL,
        TESSERA_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    with TesseraServer(env) as running:
        yield f"127.0.0.1:{running.port}"


def remove_project(address: str) -> None:
    base = f"http://{address}"
    login = httpx.post(
        f"{base}/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    httpx.delete(f"{base}/api/projects/{PROJECT}", params={"confirm": PROJECT}, headers=headers)


def run_session(document: Path, address: str) -> list[Any]:
    """Run the document's server examples in one bash; return the JSON it printed."""
    script = "\n".join(server_examples(document))
    for documented, actual in DOCUMENTED.items():
        script = script.replace(documented, actual or address)
    remove_project(address)
    try:
        result = subprocess.run(
            ["bash", "-c", PRELUDE + script],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        remove_project(address)
    assert result.returncode == 0, f"{document.name}:\n{result.stdout}\n{result.stderr}"
    assert result.stderr == "", result.stderr
    return json_documents(result.stdout)


def test_the_readme_first_session_lists_the_record_it_created(server: str) -> None:
    printed = run_session(REPO / "README.md", server)
    listed = printed[-1]
    assert [(row["title"], row["amount"]) for row in listed["data"]] == [("Desk", 300)]


def test_the_api_guide_examples_run_in_order(server: str) -> None:
    printed = run_session(REPO / "docs" / "api.md", server)
    lists = [value for value in printed if isinstance(value, dict) and "page" in value]
    assert [row["title"] for row in lists[0]["data"]] == ["Chair"]
    included = [page for page in lists if page["data"] and "customer" in page["data"][0]]
    linked = [(row["title"], row["customer"]["name"]) for row in included[-1]["data"]]
    assert linked == [("Desk", "Ada")]  # the Relations section's include
    viewed = [page for page in lists if page["data"] and "customer.name" in page["data"][0]]
    assert [(row["title"], row["customer.name"]) for row in viewed[0]["data"]] == [("Desk", "Ada")]
    customer = next(value for value in printed if isinstance(value, dict) and "orders" in value)
    assert [order["title"] for order in customer["orders"]] == ["Desk"]
    assert printed[-1]["title"] == "Lamp"


def test_the_documents_have_server_examples() -> None:
    """The documents this test runs keep examples that reach the server."""
    for document in (REPO / "README.md", REPO / "docs" / "api.md"):
        examples = server_examples(document)
        assert examples, document
        for example in examples:
            assert "curl -s " not in example  # -sS: errors must show
            if "filter[" in example:
                assert re.search(r"curl -\w*g", example), example
