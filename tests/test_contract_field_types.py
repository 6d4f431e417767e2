"""The field type contract (kernel.testing) run against every core field type.

Each class takes its type from the registry of a built kernel, by name, so the test runs
what ``field_types.core`` registers; ``test_every_core_type_has_a_contract_test`` makes
sure a new core type gets a class here.
"""

from __future__ import annotations

import sys
from typing import Any

from kernel.config import Settings
from kernel.fields import FieldType
from kernel.plugins import load_plugins
from kernel.registry import Registry
from kernel.testing import FieldTypeContract

CORE_TYPES = Registry.from_hook(
    load_plugins(Settings(plugins={"enabled": ["field_types.core"]})),
    "register_field_types",
    "field type",
    FieldType,
)


def core(name: str, **options: Any) -> FieldType:
    kind = CORE_TYPES[name]
    return kind(kind.Options(**options))


class TestString(FieldTypeContract):
    field_type = core("string", max_length=10)
    valid_values = ["", "hello", "ünïcødé ✓", "exactly 10"]
    invalid_values = [5, ["a"], "eleven char", "nul\x00"]
    text_values = [("hello", "hello"), ("", "")]


class TestText(FieldTypeContract):
    field_type = core("text")
    valid_values = ["", "a long text " * 100]
    invalid_values = [1.5, {"a": 1}, "nul\x00"]
    text_values = [("words", "words")]


class TestInteger(FieldTypeContract):
    field_type = core("integer")
    valid_values = [0, -1, 42, 2**63 - 1, -(2**63), 7.0]
    invalid_values = ["5", True, 1.5, 2**63]
    text_values = [("42", 42), (" -7 ", -7)]


class TestFloat(FieldTypeContract):
    field_type = core("float")
    valid_values = [0, 1.5, -2.25, 1e300, 3]
    invalid_values = ["1.5", False, float("inf"), float("nan")]
    text_values = [("1.5", 1.5), ("2", 2)]


class TestBoolean(FieldTypeContract):
    field_type = core("boolean")
    valid_values = [True, False]
    invalid_values = [0, 1, "true"]
    text_values = [("true", True), ("no", False), ("1", True)]


class TestDate(FieldTypeContract):
    field_type = core("date")
    valid_values = ["2024-12-31", "1970-01-01", "0001-01-01"]
    invalid_values = ["31/12/2024", "2024-02-30", 20241231]
    text_values = [("2024-12-31", "2024-12-31")]


class TestDateTime(FieldTypeContract):
    field_type = core("datetime")
    valid_values = ["2024-12-31T23:59:59+02:00", "2024-01-01T00:00:00", "2024-06-01T12:00:00Z"]
    invalid_values = ["yesterday", 1700000000, "2024-13-01T00:00:00"]
    text_values = [("2024-01-01T00:00:00Z", "2024-01-01T00:00:00+00:00")]


class TestJson(FieldTypeContract):
    field_type = core("json")
    valid_values = [{"a": [1, 2, {"b": None}]}, [1, "two"], "text", 3.5, True]
    # Arrays and objects are checked by the kernel for every type (kernel.json_values,
    # tests/test_poison.py); the type itself refuses bad scalars.
    invalid_values = ["nul\x00", 2**64]


def test_every_core_type_has_a_contract_test() -> None:
    tested = {
        cls.field_type.name
        for cls in vars(sys.modules[__name__]).values()
        if isinstance(cls, type)
        and issubclass(cls, FieldTypeContract)
        and cls is not FieldTypeContract
    }
    assert tested == set(CORE_TYPES)
