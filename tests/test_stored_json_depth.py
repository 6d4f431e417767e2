"""``decode_stored_json`` decides how deep a stored value is without walking it in Python
(kernel/json_values.py): short texts and texts with few brackets by counting, the rest by
letting orjson write the value padded to exactly ``RENDER_DEPTH`` levels. Whatever decides,
a value nested up to ``RENDER_DEPTH`` levels comes back as plain lists and dicts, and a
deeper one keeps its deep parts as JSON text that writes back byte for byte."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from kernel.json_values import RENDER_DEPTH, WRITE_DEPTH, decode_stored_json, nesting_depth


def fragments(value: Any) -> int:
    """How many ``orjson.Fragment`` s ``value`` holds."""
    found, pending = 0, [value]
    while pending:
        item = pending.pop()
        if isinstance(item, orjson.Fragment):
            found += 1
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def chain(depth: int, rng: random.Random) -> str:
    """JSON text nesting exactly ``depth`` levels, arrays and objects mixed, with empty
    containers and scalars beside the deep branch (which is not always the first)."""
    if depth == 0:
        return "7"
    text = rng.choice(["[7]", "[]", "{}", '{"k": null}'])
    for _ in range(depth - 1):
        text = rng.choice(
            [f"[{text}]", f'[0, {{"a": 1}}, {text}]', f'{{"x": {{}}, "k": {text}}}', f"[{text}, 7]"]
        )
    return text


#: Wide padding beside the value: enough brackets and bytes that counting cannot decide.
WIDE = "[" + ", ".join(['{"a": [1]}'] * 150) + "]"


@pytest.mark.parametrize("depth", [1, 150, 199, 200, 201, 202, 253, 254, 255, 300, 1000])
@pytest.mark.parametrize("wide", [False, True])
def test_stored_values_up_to_render_depth_parse_and_deeper_ones_keep_fragments(
    depth: int, wide: bool
) -> None:
    rng = random.Random(depth)
    deep = chain(depth, rng)
    text = f'{{"wide": {WIDE}, "deep": {deep}}}' if wide else deep
    total = max(depth, 3) + 1 if wide else depth  # WIDE nests 3 levels
    value = decode_stored_json(text)
    if total <= RENDER_DEPTH:
        assert fragments(value) == 0
        assert nesting_depth(value) == total
        assert value == orjson.loads(text)
    else:
        assert fragments(value) > 0
    written = orjson.dumps(value)  # deep parts as they were stored
    if total <= 300:  # deeper ones are past what Python compares without recursing too far
        assert orjson.loads(written) == orjson.loads(text)


def test_the_decision_agrees_with_a_full_walk_on_random_values() -> None:
    rng = random.Random(13)
    for _ in range(400):
        depth = rng.randint(RENDER_DEPTH - 20, RENDER_DEPTH + 20)
        text = f"[{WIDE}, {chain(depth, rng)}]" if rng.random() < 0.5 else chain(depth, rng)
        value = decode_stored_json(text)
        parsed = orjson.loads(text)
        assert (fragments(value) == 0) == (nesting_depth(parsed) <= RENDER_DEPTH), text[:80]


def test_a_wide_shallow_value_is_returned_as_parsed() -> None:
    text = orjson.dumps({"items": [{"a": i, "b": [i, {"c": None}]} for i in range(2000)]})
    assert decode_stored_json(text) == orjson.loads(text)
    assert decode_stored_json(text.decode()) == orjson.loads(text)


def test_orjson_writes_the_depth_the_padding_assumes() -> None:
    """The padding is derived from what this orjson writes: one level more must fail."""
    value: list[Any] = [1]
    for _ in range(WRITE_DEPTH - 1):
        value = [value]
    assert nesting_depth(value) == WRITE_DEPTH
    orjson.dumps(value)
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps([value])
