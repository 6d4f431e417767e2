"""The Makefile's system packages install on a fresh machine: when ``apt-get install``
fails because the package lists were never read, it reads them (once) and tries again.

``make`` runs with a PATH holding only a stand-in ``apt-get`` that logs its calls and
knows no package until ``apt-get update`` has run, like Debian's on a new machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.server import REPO

FAKE_APT_GET = """#!/bin/sh
echo "$*" >> {log}
if [ "$1" = update ]; then : > {lists}; exit 0; fi
[ -e {lists} ] || {{ echo "E: Unable to locate package $3" >&2; exit 100; }}
"""


def make(target: str, tmp_path: Path, lists_read: bool) -> list[str]:
    """Run ``make target`` with the stand-in apt-get; return the apt-get calls."""
    bin_dir, log, lists = tmp_path / "bin", tmp_path / "apt.log", tmp_path / "lists"
    bin_dir.mkdir()
    apt_get = bin_dir / "apt-get"
    apt_get.write_text(FAKE_APT_GET.format(log=log, lists=lists))
    apt_get.chmod(0o755)
    if lists_read:
        lists.touch()
    result = subprocess.run(
        ["/usr/bin/make", "-s", target],
        cwd=REPO,
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("package", ["chromium", "jq", "wrk"])
def test_a_missing_package_installs_on_a_machine_with_empty_package_lists(
    package: str, tmp_path: Path
) -> None:
    assert make(package, tmp_path, lists_read=False) == [
        f"install -y {package}",
        "update",
        f"install -y {package}",
    ]


@pytest.mark.parametrize("package", ["chromium", "jq", "wrk"])
def test_package_lists_are_not_reread_when_the_install_works(package: str, tmp_path: Path) -> None:
    assert make(package, tmp_path, lists_read=True) == [f"install -y {package}"]
