"""JMS message selectors (the SQL-92 subset ActiveMQ users write), over STOMP headers.

``Selector.parse("state = 'DONE' AND vo IN ('atlas', 'cms')")`` compiles once; ``matches``
then evaluates it against a message's headers. Supported: ``= <> < <= > >=``, ``AND OR
NOT``, ``[NOT] IN (...)``, ``[NOT] LIKE 'pat' [ESCAPE 'c']``, ``[NOT] BETWEEN a AND b``,
``IS [NOT] NULL``, ``+ - * /``, parentheses, string, numeric and boolean literals.

As in ActiveMQ, STOMP headers are string properties: comparing one with a number is
unknown (so false), never a conversion; ``< > <= >= BETWEEN`` take numbers (a string
or boolean literal there is a parse error, as in ActiveMQ); the JMS headers ``JMSPriority``,
``JMSTimestamp`` (numbers), ``JMSMessageID``, ``JMSCorrelationID`` and ``JMSType`` read
the STOMP headers ``priority``, ``timestamp``, ``message-id``, ``correlation-id`` and
``type``. Logic is three-valued: a missing header is NULL, and a comparison with NULL is
unknown; a message is selected only when the whole expression is true.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["InvalidSelector", "Selector"]

Value = str | int | float | bool | None
Expr = Callable[[Mapping[str, str]], Value]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?)
      | (?P<op><>|<=|>=|[=<>(),+\-*/])
      | (?P<word>[A-Za-z_$][\w$.\-]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "ESCAPE", "BETWEEN", "IS", "NULL", "TRUE", "FALSE"}
_JMS_HEADERS = {
    "JMSPriority": ("priority", True),
    "JMSTimestamp": ("timestamp", True),
    "JMSMessageID": ("message-id", False),
    "JMSCorrelationID": ("correlation-id", False),
    "JMSType": ("type", False),
}


class InvalidSelector(ValueError):
    """The selector cannot be parsed; the text says where."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # string, number, op, word, keyword, end
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidSelector(f"unexpected {text[pos : pos + 10].strip()!r} at {pos}")
        kind = match.lastgroup or ""
        value, at = match.group(kind), match.start(kind)
        if kind == "word" and value.upper() in _KEYWORDS:
            kind, value = "keyword", value.upper()
        out.append(_Token(kind, value, at))
        pos = match.end()
    out.append(_Token("end", "", len(text)))
    return out


def _number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(op: str, a: Value, b: Value) -> bool | None:
    if a is None or b is None:
        return None
    if _number(a) and _number(b):
        pass
    elif type(a) is not type(b):
        return None  # a string header against a number: unknown, as in ActiveMQ
    elif op not in ("=", "<>") and isinstance(a, bool):
        return None
    if op == "=":
        return a == b
    if op == "<>":
        return a != b
    assert not isinstance(a, bool) and not isinstance(b, bool) and a is not None
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


def _not(value: Value) -> Value:
    return None if value is None else not value


def _and(a: Value, b: Value) -> Value:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a: Value, b: Value) -> Value:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _like(pattern: str, escape: str | None) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if escape is not None and char == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.S)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self, *texts: str) -> bool:
        return self.tokens[self.i].text in texts and self.tokens[self.i].kind in ("op", "keyword")

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text or token.kind not in ("op", "keyword"):
            raise InvalidSelector(f"expected {text!r} at {token.at}, found {token.text!r}")

    def parse(self) -> Expr:
        expr = self.or_()
        token = self.tokens[self.i]
        if token.kind != "end":
            raise InvalidSelector(f"unexpected {token.text!r} at {token.at}")
        return expr

    def or_(self) -> Expr:
        left = self.and_()
        while self.peek("OR"):
            self.take()
            left = _both(_or, left, self.and_())
        return left

    def and_(self) -> Expr:
        left = self.not_()
        while self.peek("AND"):
            self.take()
            left = _both(_and, left, self.not_())
        return left

    def not_(self) -> Expr:
        if self.peek("NOT"):
            self.take()
            inner = self.not_()
            return lambda h: _not(inner(h))
        return self.predicate()

    def operand(self, ordered: bool) -> Expr:
        """An additive expression; ``ordered`` (``< > <= >= BETWEEN``): a literal must be a
        number, as ActiveMQ's parser requires (it refuses ``job < 'x'``)."""
        start = self.i
        expr = self.additive()
        token = self.tokens[start]
        literal = token.kind == "string" or token.text in ("TRUE", "FALSE")
        if ordered and literal and self.i == start + 1:
            raise InvalidSelector(
                f"{token.text} at {token.at} cannot be compared with < > <= >= or BETWEEN: "
                "only numbers can"
            )
        return expr

    def predicate(self) -> Expr:
        start = self.i
        left = self.additive()
        if self.peek("<", "<=", ">", ">=", "BETWEEN"):
            self.i = start  # parse it again, now knowing it is ordered
            left = self.operand(ordered=True)
        if self.peek("=", "<>", "<", "<=", ">", ">="):
            op = self.take().text
            right = self.operand(ordered=op not in ("=", "<>"))
            return lambda h: _compare(op, left(h), right(h))
        if self.peek("IS"):
            self.take()
            negate = self.peek("NOT")
            if negate:
                self.take()
            self.expect("NULL")
            return lambda h: (left(h) is None) != negate
        negate = self.peek("NOT")
        if negate:
            self.take()
            if not self.peek("IN", "LIKE", "BETWEEN"):
                raise InvalidSelector(f"expected IN, LIKE or BETWEEN at {self.tokens[self.i].at}")
        test = self.membership(left)
        if negate:
            return lambda h: _not(test(h))
        return test

    def membership(self, left: Expr) -> Expr:
        if self.peek("IN"):
            self.take()
            self.expect("(")
            values = [self.string()]
            while self.peek(","):
                self.take()
                values.append(self.string())
            self.expect(")")
            options = frozenset(values)
            return lambda h: None if not isinstance(v := left(h), str) else v in options
        if self.peek("LIKE"):
            self.take()
            pattern = self.string()
            escape = None
            if self.peek("ESCAPE"):
                self.take()
                escape = self.string()
                if len(escape) != 1:
                    raise InvalidSelector("ESCAPE takes one character")
            regex = _like(pattern, escape)
            return lambda h: None if not isinstance(v := left(h), str) else bool(regex.fullmatch(v))
        if self.peek("BETWEEN"):
            self.take()
            low = self.operand(ordered=True)
            self.expect("AND")
            high = self.operand(ordered=True)
            return lambda h: _and(_compare(">=", v := left(h), low(h)), _compare("<=", v, high(h)))
        return left

    def string(self) -> str:
        token = self.take()
        if token.kind != "string":
            raise InvalidSelector(f"expected a string literal at {token.at}")
        return token.text[1:-1].replace("''", "'")

    def additive(self) -> Expr:
        left = self.multiplicative()
        while self.peek("+", "-"):
            op = self.take().text
            left = _both(_arithmetic_op(op), left, self.multiplicative())
        return left

    def multiplicative(self) -> Expr:
        left = self.unary()
        while self.peek("*", "/"):
            op = self.take().text
            left = _both(_arithmetic_op(op), left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.peek("-", "+"):
            sign = self.take().text
            inner = self.unary()
            if sign == "+":
                return inner
            return lambda h: _arithmetic("-", 0, inner(h))
        return self.primary()

    def primary(self) -> Expr:
        token = self.take()
        if token.kind == "op" and token.text == "(":
            inner = self.or_()
            self.expect(")")
            return inner
        if token.kind == "string":
            value: Value = token.text[1:-1].replace("''", "'")
        elif token.kind == "number":
            text = token.text
            value = float(text) if any(c in text for c in ".eE") else int(text)
        elif token.kind == "keyword" and token.text in ("TRUE", "FALSE"):
            value = token.text == "TRUE"
        elif token.kind == "word":
            return _identifier(token.text)
        else:
            raise InvalidSelector(f"unexpected {token.text or 'end'!r} at {token.at}")
        return lambda h: value


def _both(combine: Callable[[Value, Value], Value], left: Expr, right: Expr) -> Expr:
    return lambda h: combine(left(h), right(h))


def _arithmetic_op(op: str) -> Callable[[Value, Value], Value]:
    return lambda a, b: _arithmetic(op, a, b)


def _identifier(name: str) -> Expr:
    header, numeric = _JMS_HEADERS.get(name, (name, False))
    if not numeric:
        return lambda h: h.get(header)

    def number(h: Mapping[str, str]) -> Value:
        raw = h.get(header)
        return int(raw) if raw is not None and raw.isdigit() else None

    return number


def _arithmetic(op: str, a: Value, b: Value) -> Value:
    if not (_number(a) and _number(b)):
        return None
    assert isinstance(a, int | float) and isinstance(b, int | float)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return None if b == 0 else a / b


@dataclass(frozen=True, slots=True)
class Selector:
    text: str
    _expr: Expr

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Compile ``text``; InvalidSelector saying where it is wrong."""
        return cls(text, _Parser(text).parse())

    def matches(self, headers: Mapping[str, str]) -> bool:
        return self._expr(headers) is True
