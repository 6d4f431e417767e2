"""The bench's report: the table people read and the JSON other tools read (issue 7)."""

from __future__ import annotations

import json

from bench.loadgen import LoadResult
from bench.report import OpResult, table, write_json

CPU = {"server": 120.0, "postgres": 50.0, "generator": 25.0, "others": 3.0, "machine": 198.0}
FLOOR_CPU = {"client": 95.0, "server": 0.5, "postgres": 65.0, "others": 5.0, "machine": 165.5}


def _result(name: str, goal: float, requests: int, floor_requests: int) -> OpResult:
    return OpResult(
        name,
        goal,
        LoadResult(requests=requests, seconds=10.0, p50_ms=1.5, p99_ms=4.0, errors=0),
        LoadResult(requests=floor_requests, seconds=10.0, p50_ms=0.9, p99_ms=1.5, errors=0),
        CPU,
        FLOOR_CPU,
    )


RESULTS = [
    _result("get_by_id", 0.55, 200_000, 340_000),
    _result("list_filtered_first", 0.60, 90_000, 140_000),
    _result("list_filtered_deep", 0.60, 60_000, 120_000),
]


def test_table_shows_each_op_against_its_floor_and_goal() -> None:
    text = table(RESULTS)
    lines = text.splitlines()
    get_line = next(line for line in lines if line.startswith("get_by_id "))
    assert get_line.split() == ["get_by_id", "20,000", "1.50", "4.00", "34,000", "0.59", "0.55"]
    deep_line = next(line for line in lines if line.startswith("list_filtered_deep "))
    assert deep_line.split()[-4:] == ["0.50", "0.60", "below", "goal"]
    # Tessera's and the floor's deep/first ratios side by side: 6,000/9,000 and 12,000/14,000.
    assert "deep page / first page: 0.67, floor 0.86" in text
    # CPU per request: 120 % of a core at 20,000 req/s is 0.060 ms.
    cpu_line = next(line for line in lines if line.startswith("get_by_id ") and "|" in line)
    assert cpu_line.split()[1:3] == ["120", "0.060"]


def test_json_has_the_contract_fields_per_op_and_meta(tmp_path) -> None:
    path = tmp_path / "results" / "latest.json"
    write_json(path, RESULTS, {"workers": 2, "commit": "abc"})
    document = json.loads(path.read_text())
    assert set(document) == {"get_by_id", "list_filtered_first", "list_filtered_deep", "meta"}
    get = document["get_by_id"]
    assert {key: get[key] for key in ("rps", "p50_ms", "p99_ms", "floor_rps", "ratio")} == {
        "rps": 20000.0,
        "p50_ms": 1.5,
        "p99_ms": 4.0,
        "floor_rps": 34000.0,
        "ratio": 0.588,
    }
    deep = document["list_filtered_deep"]
    assert deep["rps_vs_first_page"] == 0.667
    assert deep["floor_rps_vs_first_page"] == 0.857
    assert document["meta"] == {"workers": 2, "commit": "abc"}
