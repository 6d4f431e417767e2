"""The records path's query-string parser agrees with the standard library's."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from kernel.api.query_string import query_items

CASES = [
    "",
    "limit=25",
    "filter%5Bamount%5D%5Blt%5D=5000&sort=due_at%3Adesc&limit=25",
    "filter[title]=a+b&filter[title][in]=x,y",
    "cursor=eyJhIjoxfQ.c2ln&limit=",
    "flag&&x=1&",
    "name=%E2%9C%93&bad=%FF%FE&plus=%2B&space=%20",
    "a=1=2&=empty&%zz=raw",
    "sort=-created_at&sort=title&_=123",
]


@pytest.mark.parametrize("query", CASES)
def test_same_items_as_parse_qsl(query: str) -> None:
    assert query_items(query) == parse_qsl(query, keep_blank_values=True)
