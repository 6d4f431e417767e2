"""Parse and print the expression language.

Grammar (keywords are case-insensitive)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := value [ symbol value | ["not"] "in" list | "contains" value
                          | "between" literal "and" literal | "is" ["not"] "null" ]
                | "(" expr ")"
    value      := field | "@auth." attribute | "@now" | string | number | true | false | null
    list       := "[" literal ("," literal)* "]" | "(" literal ("," literal)* ")"
    symbol     := "=" | "==" | "!=" | "<>" | ">" | "<" | ">=" | "<="

A bare field (``is_active``) means ``is_active = true``. There are no function calls, no
loops and no assignments; length, nesting depth and node count are bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kernel.expr.ast import (
    AUTH_ATTRIBUTES,
    OPERATOR_SYMBOLS,
    SYMBOL_OPERATORS,
    And,
    AuthRef,
    Compare,
    FieldRef,
    ListValue,
    Literal,
    Node,
    Not,
    Now,
    Or,
)

MAX_LENGTH = 4000
MAX_DEPTH = 24
MAX_NODES = 256
MAX_LIST = 100


class ExpressionError(ValueError):
    """An expression that does not parse or breaks a limit; ``position`` is 0-based."""

    def __init__(self, message: str, position: int | None = None) -> None:
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}")
        self.position = position


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # name, auth, now, string, number, symbol, punct, keyword, end
    text: str
    value: Any
    position: int


KEYWORDS = {"and", "or", "not", "in", "contains", "between", "is", "null", "true", "false"}
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<auth>@auth\.[a-z_]+)
  | (?P<now>@now\b)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<symbol>==|!=|<>|>=|<=|=|>|<)
  | (?P<punct>[()\[\],-])
    """,
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ExpressionError(f"unexpected character {text[position]!r}", position)
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "string":
            tokens.append(Token("string", raw, _ESCAPE.sub(r"\1", raw[1:-1]), position))
        elif kind == "number":
            value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token("number", raw, value, position))
        elif kind == "name":
            lowered = raw.lower()
            if lowered in KEYWORDS:
                tokens.append(Token("keyword", lowered, lowered, position))
            else:
                tokens.append(Token("name", raw, raw, position))
        elif kind == "auth":
            attribute = raw.removeprefix("@auth.")
            if attribute not in AUTH_ATTRIBUTES:
                raise ExpressionError(
                    f"unknown @auth attribute {attribute!r} (known: {', '.join(AUTH_ATTRIBUTES)})",
                    position,
                )
            tokens.append(Token("auth", raw, attribute, position))
        elif kind != "space":
            tokens.append(Token(kind, raw, raw, position))
        position = match.end()
    tokens.append(Token("end", "", None, len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0
        self.nodes = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        token = self.current
        if token.kind == kind and (text is None or token.text == text):
            return self.advance()
        return None

    def expect(self, kind: str, text: str, what: str) -> Token:
        token = self.accept(kind, text)
        if token is None:
            raise ExpressionError(
                f"expected {what}, found {self.describe(self.current)}", self.current.position
            )
        return token

    @staticmethod
    def describe(token: Token) -> str:
        return "end of expression" if token.kind == "end" else repr(token.text)

    def count(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"expression has more than {MAX_NODES} parts")

    def parse(self) -> Node:
        node = self.or_expr()
        if self.current.kind != "end":
            raise ExpressionError(
                f"unexpected {self.describe(self.current)}", self.current.position
            )
        return node

    def nested(self, parse: Any) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(
                f"expression nests deeper than {MAX_DEPTH} levels", self.current.position
            )
        try:
            return parse()
        finally:
            self.depth -= 1

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.accept("keyword", "or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.accept("keyword", "and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Node:
        if self.accept("keyword", "not"):
            self.count()
            return Not(self.nested(self.not_expr))
        return self.comparison()

    def comparison(self) -> Node:
        self.count()
        if self.accept("punct", "("):
            node = self.nested(self.or_expr)
            self.expect("punct", ")", "')'")
            return node
        left = self.value()
        token = self.current
        if token.kind == "symbol":
            self.advance()
            return Compare(SYMBOL_OPERATORS[token.text], left, self.value())
        if token.kind == "keyword" and token.text in {"in", "not"}:
            negated = token.text == "not"
            self.advance()
            if negated:
                self.expect("keyword", "in", "'in' after 'not'")
            node = Compare("in", left, self.list_value())
            return Not(node) if negated else node
        if self.accept("keyword", "contains"):
            return Compare("contains", left, self.value())
        if self.accept("keyword", "between"):
            low = self.literal()
            self.expect("keyword", "and", "'and' between the two bounds")
            return Compare("between", left, ListValue((low, self.literal())))
        if self.accept("keyword", "is"):
            negated = self.accept("keyword", "not") is not None
            self.expect("keyword", "null", "'null' after 'is'")
            return Compare("is_null", left, Literal(not negated))
        if isinstance(left, FieldRef):
            return Compare("eq", left, Literal(True))
        if isinstance(left, Literal) and isinstance(left.value, bool):
            return left
        raise ExpressionError(
            f"expected a comparison after {self.describe(self.tokens[self.index - 1])}",
            token.position,
        )

    def value(self) -> Any:
        token = self.current
        if token.kind == "name":
            self.advance()
            return FieldRef(token.text)
        if token.kind == "auth":
            self.advance()
            return AuthRef(token.value)
        if token.kind == "now":
            self.advance()
            return Now()
        return self.literal()

    def literal(self) -> Literal:
        token = self.current
        if token.kind in {"string", "number"}:
            self.advance()
            return Literal(token.value)
        if token.kind == "punct" and token.text == "-":
            self.advance()
            number = self.current
            if number.kind != "number":
                raise ExpressionError("expected a number after '-'", number.position)
            self.advance()
            return Literal(-number.value)
        if token.kind == "keyword" and token.text in {"true", "false", "null"}:
            self.advance()
            return Literal({"true": True, "false": False, "null": None}[token.text])
        raise ExpressionError(f"expected a value, found {self.describe(token)}", token.position)

    def list_value(self) -> ListValue:
        opening = self.current
        if not (opening.kind == "punct" and opening.text in "(["):
            raise ExpressionError("expected a list like ['a', 'b'] after 'in'", opening.position)
        self.advance()
        closing = ")" if opening.text == "(" else "]"
        items = [self.literal()]
        while self.accept("punct", ","):
            items.append(self.literal())
            if len(items) > MAX_LIST:
                raise ExpressionError(f"lists hold at most {MAX_LIST} values", opening.position)
        self.expect("punct", closing, f"{closing!r}")
        return ListValue(tuple(items))


def parse(text: str) -> Node:
    """Parse ``text`` into a syntax tree, or raise :class:`ExpressionError`."""
    if not isinstance(text, str):
        raise ExpressionError("an expression must be a string")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise ExpressionError("expression is empty")
    return _Parser(text).parse()


def to_text(node: Node) -> str:
    """Print a syntax tree back as an expression that parses to the same tree."""
    if isinstance(node, Or):
        return " or ".join(_grouped(item, Or) for item in node.items)
    if isinstance(node, And):
        return " and ".join(_grouped(item, And) for item in node.items)
    if isinstance(node, Not):
        return f"not {_grouped(node.item, Not)}"
    if isinstance(node, Literal):
        return _value_text(node)
    left = _value_text(node.left)
    if node.operator == "is_null":
        return f"{left} is null" if node.right.value else f"{left} is not null"
    if node.operator == "in":
        return f"{left} in [{', '.join(_value_text(item) for item in node.right.items)}]"
    if node.operator == "between":
        low, high = node.right.items
        return f"{left} between {_value_text(low)} and {_value_text(high)}"
    if node.operator == "contains":
        return f"{left} contains {_value_text(node.right)}"
    return f"{left} {OPERATOR_SYMBOLS[node.operator]} {_value_text(node.right)}"


def _grouped(node: Node, parent: type) -> str:
    text = to_text(node)
    if isinstance(node, Or | And) and not isinstance(node, parent):
        return f"({text})"
    if parent is Not and isinstance(node, Or | And | Not):
        return f"({text})"
    return text


def _value_text(value: Any) -> str:
    if isinstance(value, FieldRef):
        return value.name
    if isinstance(value, AuthRef):
        return f"@auth.{value.attribute}"
    if isinstance(value, Now):
        return "@now"
    raw = value.value
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return repr(raw)
    escaped = str(raw).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"
