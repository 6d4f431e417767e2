"""The query contract shared by collections and views: limit, cursor, sort, filters.

This package is public for plugins that run their own list queries (with
``tessera.records.readable``, see :mod:`kernel.records.readable`): import from
``kernel.query`` itself, never from its modules. It offers reading a raw query string
(:func:`query_items`), parsing the contract (:func:`parse_list_query`,
:func:`split_cursor`, :class:`ListQuery`, :class:`Limits`, :class:`SortKey`), keyset
pagination (:func:`order_by`, :func:`after_cursor`; the signed cursors between pages,
:func:`encode_cursor` and :func:`decode_cursor` into a :class:`CursorPosition`) and the
statements they end in (:class:`Params`, :func:`compile_statement`,
:class:`CompiledStatement`: compiled once per shape, run on ``tessera.db.pool``).
"""

from kernel.query.contract import Limits, ListQuery, SortKey, parse_list_query, split_cursor
from kernel.query.keyset import (
    CursorPosition,
    after_cursor,
    decode_cursor,
    encode_cursor,
    order_by,
)
from kernel.query.query_string import query_items
from kernel.statements import CompiledStatement, Params, compile_statement

__all__ = [
    "CompiledStatement",
    "CursorPosition",
    "Limits",
    "ListQuery",
    "Params",
    "SortKey",
    "after_cursor",
    "compile_statement",
    "decode_cursor",
    "encode_cursor",
    "order_by",
    "parse_list_query",
    "query_items",
    "split_cursor",
]
