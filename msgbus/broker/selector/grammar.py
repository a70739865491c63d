"""Selector text to an expression tree, by the grammar of ActiveMQ's SelectorParser.jj.

The same tokens (ASCII identifiers, keywords in any case, ``--`` and ``/* */`` comments,
decimal/hex/octal/float literals) and the same precedence: OR, AND, then ``= <> IS [NOT]
NULL``, then ``< <= > >= [NOT] LIKE/BETWEEN/IN``, then ``+ -``, ``* / %``, and the unary
``+ - NOT``, so ``NOT a = 'x'`` is ``(NOT a) = 'x'``. The checks ActiveMQ makes while
building the tree are made here too (``'x' > 1``, ``TRUE = 1``, ``a = NULL``, a non-property
before IN, a non-condition as a condition). Function calls, XPATH and XQUERY are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from msgbus.broker.selector.expressions import (
    And,
    Arithmetic,
    BooleanCast,
    Comparison,
    Constant,
    Equals,
    Expression,
    In,
    Like,
    Negate,
    Not,
    Or,
    Property,
    is_boolean,
)
from msgbus.broker.selector.java import JInt, JLong, parse_number_literal
from msgbus.errors import MsgbusError

__all__ = ["InvalidSelector", "parse"]

_KEYWORDS = {
    "NOT", "AND", "OR", "BETWEEN", "LIKE", "ESCAPE", "IN", "IS",
    "TRUE", "FALSE", "NULL", "XPATH", "XQUERY",
}  # fmt: skip
_EXPONENT = r"[eE][+-]?[0-9]+"
# Each alternative is one of SelectorParser.jj's tokens; the longest match wins, as in JavaCC.
_CANDIDATES = [
    ("skip", re.compile(r"[ \t\n\r\f]")),
    ("skip", re.compile(r"--[^\n\r]*(?:\r\n|\n|\r)")),
    ("skip", re.compile(r"/\*[^*]*\*+(?:[^*/][^*]*\*+)*/")),
    ("word", re.compile(r"[a-zA-Z_$][a-zA-Z0-9_$]*")),
    ("number", re.compile(r"[1-9][0-9]*[lL]?")),
    ("number", re.compile(r"0[xX][0-9a-fA-F]+")),
    ("number", re.compile(r"0[0-7]*")),
    ("number", re.compile(rf"[0-9]+\.[0-9]*(?:{_EXPONENT})?|\.[0-9]+(?:{_EXPONENT})?")),
    ("number", re.compile(rf"[0-9]+{_EXPONENT}")),
    ("string", re.compile(r"'(?:''|[^'])*'")),
    ("op", re.compile(r"<>|<=|>=|[=<>(),+\-*/%]")),
]


class InvalidSelector(MsgbusError):
    """The selector is not one ActiveMQ would accept; the text says what and where."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word, keyword, number, string, op, end
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        best_kind, best_end = "", pos
        for kind, pattern in _CANDIDATES:
            match = pattern.match(text, pos)
            if match is not None and match.end() > best_end:
                best_kind, best_end = kind, match.end()
        if not best_kind:
            raise InvalidSelector(f"unexpected character {text[pos]!r} at {pos}")
        value = text[pos:best_end]
        if best_kind == "word" and value.upper() in _KEYWORDS:
            best_kind, value = "keyword", value.upper()
        if best_kind != "skip":
            out.append(_Token(best_kind, value, pos))
        pos = best_end
    out.append(_Token("end", "", len(text)))
    return out


def _found(token: _Token) -> str:
    return repr(token.text) if token.text else "the end"


def _string(token: _Token) -> str:
    return token.text[1:-1].replace("''", "'")


def _numeric(node: Expression) -> bool:
    value = node.value if isinstance(node, Constant) else None
    return isinstance(value, JInt | JLong | float | Decimal) and not isinstance(value, bool)


def _show(node: Expression) -> str:
    if isinstance(node, Constant):
        value = node.value
        if value is None or isinstance(value, bool):
            return {None: "NULL", True: "TRUE", False: "FALSE"}[value]
        return repr(value) if isinstance(value, str) else str(value)
    return type(node).__name__.lower()


def _ordered(op: str, left: Expression, right: Expression) -> Comparison:
    """``< <= > >=``: a constant side must be a number, and no side a condition."""
    for side in (left, right):
        if (isinstance(side, Constant) and not _numeric(side)) or (
            not isinstance(side, Constant) and is_boolean(side)
        ):
            raise InvalidSelector(
                f"{_show(side)} cannot be compared with {op}: only numbers and properties can"
            )
    return Comparison(op, left, right)


def _equal(left: Expression, right: Expression) -> Equals:
    for side in (left, right):
        if isinstance(side, Constant) and side.value is None:
            raise InvalidSelector("NULL cannot be compared with = or <>: write IS [NOT] NULL")
    both_constant = isinstance(left, Constant) and isinstance(right, Constant)
    if both_constant and is_boolean(left) and not is_boolean(right):
        raise InvalidSelector(f"{_show(left)} cannot be compared with {_show(right)}")
    return Equals(left, right)


def _condition(node: Expression) -> Expression:
    if is_boolean(node):
        return node
    if isinstance(node, Property):
        return BooleanCast(node)
    raise InvalidSelector(f"{_show(node)} is not a condition (true, false or unknown)")


def _like(pattern: str, escape: str | None) -> re.Pattern[str]:
    """ActiveMQ's LIKE: % any run, _ one character; the escape character makes a literal
    of a following %, _ or itself, and is an ordinary character before anything else."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == escape and i + 1 < len(pattern) and pattern[i + 1] in ("%", "_", escape):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def at(self, *texts: str, ahead: int = 0) -> bool:
        token = self.tokens[min(self.i + ahead, len(self.tokens) - 1)]
        return token.kind in ("op", "keyword") and token.text in texts

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.kind not in ("op", "keyword") or token.text != text:
            raise InvalidSelector(f"expected {text} at {token.at}, found {_found(token)}")

    def string(self) -> str:
        token = self.take()
        if token.kind != "string":
            raise InvalidSelector(f"expected a 'string' at {token.at}, found {_found(token)}")
        return _string(token)

    def selector(self) -> Expression:
        node = self.or_()
        token = self.tokens[self.i]
        if token.kind != "end":
            raise InvalidSelector(f"unexpected {token.text!r} at {token.at}")
        return _condition(node)

    def or_(self) -> Expression:
        left = self.and_()
        while self.at("OR"):
            self.take()
            right = _condition(self.and_())
            left = _condition(left)
            left = Or((*left.parts, right)) if isinstance(left, Or) else Or((left, right))
        return left

    def and_(self) -> Expression:
        left = self.equality()
        while self.at("AND"):
            self.take()
            right = _condition(self.equality())
            left = _condition(left)
            left = And((*left.parts, right)) if isinstance(left, And) else And((left, right))
        return left

    def equality(self) -> Expression:
        left = self.comparison()
        while True:
            if self.at("=", "<>"):
                negated = self.take().text == "<>"
                equal = _equal(left, self.comparison())
                left = Not(equal) if negated else equal
            elif self.at("IS"):
                self.take()
                negated = self.at("NOT")
                if negated:
                    self.take()
                self.expect("NULL")
                is_null = Equals(left, Constant(None))
                left = Not(is_null) if negated else is_null
            else:
                return left

    def comparison(self) -> Expression:
        left = self.additive()
        while True:
            if self.at("<", "<=", ">", ">="):
                op = self.take().text
                left = _ordered(op, left, self.additive())
                continue
            negated = self.at("NOT") and self.at("LIKE", "BETWEEN", "IN", ahead=1)
            if negated:
                self.take()
            if self.at("LIKE"):
                left = self.like(left, negated)
            elif self.at("BETWEEN"):
                self.take()
                low = self.additive()
                self.expect("AND")
                high = self.additive()
                if negated:
                    left = Or((_ordered("<", left, low), _ordered(">", left, high)))
                else:
                    left = And((_ordered(">=", left, low), _ordered("<=", left, high)))
            elif self.at("IN"):
                left = self.in_(left, negated)
            else:
                return left

    def like(self, left: Expression, negated: bool) -> Expression:
        self.take()
        pattern, escape = self.string(), None
        if self.at("ESCAPE"):
            self.take()
            escape = self.string()
            if len(escape.encode("utf-16-le", "surrogatepass")) != 2:
                raise InvalidSelector(f"ESCAPE takes one character, not {escape!r}")
        node = Like(left, _like(pattern, escape))
        return Not(node) if negated else node

    def in_(self, left: Expression, negated: bool) -> Expression:
        self.take()
        self.expect("(")
        values = [self.string()]
        while self.at(","):
            self.take()
            values.append(self.string())
        self.expect(")")
        if not isinstance(left, Property):
            raise InvalidSelector(f"IN needs a property on its left, not {_show(left)}")
        return In(left, frozenset(values), negated)

    def additive(self) -> Expression:
        left = self.multiplicative()
        while self.at("+", "-"):
            op = self.take().text
            left = Arithmetic(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Expression:
        left = self.unary()
        while self.at("*", "/", "%"):
            op = self.take().text
            left = Arithmetic(op, left, self.unary())
        return left

    def unary(self) -> Expression:
        if self.at("+"):
            self.take()
            return self.unary()
        if self.at("-"):
            self.take()
            return Negate(self.unary())
        if self.at("NOT"):
            self.take()
            return Not(_condition(self.unary()))
        token = self.tokens[self.i]
        if self.at("XPATH", "XQUERY") or (token.kind == "word" and self.at("(", ahead=1)):
            raise InvalidSelector(
                f"{token.text} at {token.at}: function calls, XPATH and XQUERY are "
                "ActiveMQ extensions the embedded broker does not have; select on properties"
            )
        return self.primary()

    def primary(self) -> Expression:
        token = self.take()
        if token.kind == "op" and token.text == "(":
            inner = self.or_()
            self.expect(")")
            return inner
        if token.kind == "string":
            return Constant(_string(token))
        if token.kind == "number":
            try:
                return Constant(parse_number_literal(token.text))
            except ValueError:
                too_big = f"{token.text} at {token.at} does not fit in a long"
                raise InvalidSelector(too_big) from None
        if token.kind == "keyword" and token.text in ("TRUE", "FALSE", "NULL"):
            return Constant(None if token.text == "NULL" else token.text == "TRUE")
        if token.kind == "word":
            return Property(token.text)
        raise InvalidSelector(f"unexpected {_found(token)} at {token.at}")


def parse(text: str) -> Expression:
    """The tree of ``text``; InvalidSelector saying what is wrong and where."""
    try:
        return _Parser(text).selector()
    except RecursionError:
        raise InvalidSelector("the selector is nested too deeply; write it flatter") from None
