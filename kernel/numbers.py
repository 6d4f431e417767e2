"""Integers as PostgreSQL stores them (``bigint``) and as clients write them in text.

Text means ASCII decimal, as in JSON: Python's ``int()`` would also take ``+5``, ``1_000``,
surrounding whitespace and digits of other scripts (``٥``, full-width ``５``), none of
which a client means as a number in a query string or a path.
"""

from __future__ import annotations

import re

from kernel.fields import FieldValueError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_INTEGER_TEXT = re.compile(r"-?[0-9]{1,20}")


def parse_int64(text: str) -> int:
    """The integer ``text`` writes in ASCII decimal (an optional ``-``, then digits).

    Raises :class:`FieldValueError` ``invalid_type`` for anything else and
    ``out_of_range`` for an integer outside 64 bits."""
    if _INTEGER_TEXT.fullmatch(text) is None:
        raise FieldValueError("invalid_type", f"{text!r} is not an integer")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise FieldValueError("out_of_range", f"{text!r} does not fit in 64 bits")
    return value
