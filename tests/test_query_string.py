"""The records path's query-string parser agrees with the standard library's."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from kernel.query import query_string
from kernel.query.query_string import query_items

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
    assert query_items(query) == parse_qsl(query, keep_blank_values=True)  # decoded parts kept


def test_long_and_many_parts_stay_correct() -> None:
    long_value = "%41" * 200  # over the length worth keeping
    query = f"filter[title]={long_value}&" + "&".join(f"f%5B{n}%5D=%2B" for n in range(5000))
    assert query_items(query) == parse_qsl(query, keep_blank_values=True)


def test_the_decoded_parts_cache_is_bounded() -> None:
    for number in range(query_string.MAX_CACHED_PARTS + 10):
        query_items(f"filter%5Bn%5D={number}")
    assert len(query_string._decoded) == query_string.MAX_CACHED_PARTS
