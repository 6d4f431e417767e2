"""The bounded cache behind every per-shape, per-project and per-key cache (kernel/lru.py)."""

from __future__ import annotations

import pytest

from kernel.lru import LruCache


def test_holds_at_most_its_limit_and_drops_the_least_recently_used() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert len(cache) == 2
    assert cache.get("b") is None
    assert cache.items() == [("a", 1), ("c", 3)]


def test_get_or_make_makes_once_and_keeps_nothing_when_making_fails() -> None:
    cache: LruCache[str, int] = LruCache(4)
    made = []

    def make() -> int:
        made.append(1)
        return len(made)

    assert cache.get_or_make("k", make) == 1
    assert cache.get_or_make("k", make) == 1
    assert made == [1]

    def fail() -> int:
        raise ValueError("does not parse")

    with pytest.raises(ValueError):
        cache.get_or_make("bad", fail)
    assert cache.get("bad") is None and len(cache) == 1


def test_pop_and_clear_forget_entries() -> None:
    cache: LruCache[str, int] = LruCache(4)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.pop("a") == 1 and cache.pop("a") is None
    cache.clear()
    assert len(cache) == 0


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        LruCache(0)
