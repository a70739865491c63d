"""The selector's expression tree, evaluated as ActiveMQ's org.apache.activemq.filter classes do.

Each node has ``evaluate`` (a Java value: true, false, null, a number or a string) and
``matches`` (selected or not). They differ where ActiveMQ's differ: AND and OR test their
parts with ``matches``, which stops at the first part that is not true, so a part that
would fail (``EvaluationFailed``) may never run; NOT and the comparisons use ``evaluate``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from msgbus.broker.selector.java import (
    JavaValue,
    arithmetic,
    compare,
    java_equals,
    negate,
)

__all__ = [
    "And",
    "Arithmetic",
    "BooleanCast",
    "Comparison",
    "Constant",
    "Equals",
    "Expression",
    "In",
    "Like",
    "Lookup",
    "Negate",
    "Not",
    "Or",
    "Property",
    "is_boolean",
]

# A property's Java value by its selector name (null when the message has none).
Lookup = Callable[[str], JavaValue]


class Expression:
    """A node of the tree."""

    def evaluate(self, lookup: Lookup) -> JavaValue:
        raise NotImplementedError

    def matches(self, lookup: Lookup) -> bool:
        return self.evaluate(lookup) is True


@dataclass(frozen=True, slots=True)
class Constant(Expression):
    value: JavaValue

    def evaluate(self, lookup: Lookup) -> JavaValue:
        return self.value


@dataclass(frozen=True, slots=True)
class Property(Expression):
    name: str

    def evaluate(self, lookup: Lookup) -> JavaValue:
        return lookup(self.name)


@dataclass(frozen=True, slots=True)
class Negate(Expression):
    inner: Expression

    def evaluate(self, lookup: Lookup) -> JavaValue:
        return negate(self.inner.evaluate(lookup))


@dataclass(frozen=True, slots=True)
class _NullPropagating(Expression):
    """``left op right``, null if either side is (the right side is not evaluated then)."""

    op: str
    left: Expression
    right: Expression

    def evaluate(self, lookup: Lookup) -> JavaValue:
        lv = self.left.evaluate(lookup)
        if lv is None:
            return None
        rv = self.right.evaluate(lookup)
        return None if rv is None else self.apply(lv, rv)

    def apply(self, lv: JavaValue, rv: JavaValue) -> JavaValue:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Arithmetic(_NullPropagating):
    """``+ - * / %``."""

    def apply(self, lv: JavaValue, rv: JavaValue) -> JavaValue:
        return arithmetic(self.op, lv, rv)


@dataclass(frozen=True, slots=True)
class Comparison(_NullPropagating):
    """``< <= > >=``."""

    def apply(self, lv: JavaValue, rv: JavaValue) -> JavaValue:
        return compare(self.op, lv, rv)


@dataclass(frozen=True, slots=True)
class Equals(Expression):
    """``=`` (and ``IS NULL`` against a NULL constant). Null only when the left side is null
    and the right is not: a value against null is false, null against null is true."""

    left: Expression
    right: Expression

    def evaluate(self, lookup: Lookup) -> JavaValue:
        lv, rv = self.left.evaluate(lookup), self.right.evaluate(lookup)
        if (lv is None) != (rv is None):
            return None if lv is None else False
        if java_equals(lv, rv):
            return True
        return compare("=", lv, rv)


@dataclass(frozen=True, slots=True)
class Like(Expression):
    inner: Expression
    pattern: re.Pattern[str]

    def evaluate(self, lookup: Lookup) -> JavaValue:
        value = self.inner.evaluate(lookup)
        if value is None:
            return None
        return isinstance(value, str) and self.pattern.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class In(Expression):
    """``[NOT] IN``: null unless the property is a string."""

    inner: Property
    values: frozenset[str]
    negated: bool

    def evaluate(self, lookup: Lookup) -> JavaValue:
        value = self.inner.evaluate(lookup)
        if not isinstance(value, str):
            return None
        return (value in self.values) != self.negated


@dataclass(frozen=True, slots=True)
class BooleanCast(Expression):
    """A property used as a condition: true only if it is a boolean true."""

    inner: Expression

    def evaluate(self, lookup: Lookup) -> JavaValue:
        value = self.inner.evaluate(lookup)
        if value is None:
            return None
        return value if isinstance(value, bool) else False


@dataclass(frozen=True, slots=True)
class Not(Expression):
    inner: Expression

    def evaluate(self, lookup: Lookup) -> JavaValue:
        value = self.inner.evaluate(lookup)
        return None if value is None else not value


@dataclass(frozen=True, slots=True)
class And(Expression):
    parts: tuple[Expression, ...]

    def evaluate(self, lookup: Lookup) -> JavaValue:
        unknown = False
        for part in self.parts:
            value = part.evaluate(lookup)
            if value is False:
                return False
            unknown = unknown or value is None
        return None if unknown else True

    def matches(self, lookup: Lookup) -> bool:
        return all(part.matches(lookup) for part in self.parts)


@dataclass(frozen=True, slots=True)
class Or(Expression):
    parts: tuple[Expression, ...]

    def evaluate(self, lookup: Lookup) -> JavaValue:
        unknown = False
        for part in self.parts:
            value = part.evaluate(lookup)
            if value is True:
                return True
            unknown = unknown or value is None
        return None if unknown else False

    def matches(self, lookup: Lookup) -> bool:
        return any(part.matches(lookup) for part in self.parts)


def is_boolean(node: Expression) -> bool:
    """ActiveMQ's BooleanExpression: conditions, and the constants TRUE, FALSE and NULL."""
    if isinstance(node, Constant):
        return node.value is None or isinstance(node.value, bool)
    return isinstance(node, Comparison | Equals | Like | In | BooleanCast | Not | And | Or)
