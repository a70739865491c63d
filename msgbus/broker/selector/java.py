"""Java's values as ActiveMQ's selector code sees them: types, parsing, comparison, arithmetic.

A selector value is a Java ``Integer`` (``JInt``), ``Long`` (``JLong``), ``Double``
(``float``), ``BigDecimal`` (``Decimal``, a decimal literal too large for a long), ``String``
(``str``), ``Boolean`` (``bool``) or null (``None``). Integer and Long are kept apart because
ActiveMQ's conversions and overflow depend on which one a value is.
"""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import Decimal
from typing import Literal

from msgbus.errors import MsgbusError

__all__ = [
    "EvaluationFailed",
    "JInt",
    "JLong",
    "JavaNumber",
    "JavaValue",
    "NumberFormatError",
    "arithmetic",
    "compare",
    "java_equals",
    "java_string",
    "negate",
    "parse_number_literal",
]


class JInt(int):
    """A Java Integer (32 bits)."""


class JLong(int):
    """A Java Long (64 bits)."""


JavaNumber = JInt | JLong | float | Decimal
JavaValue = str | bool | JInt | JLong | float | Decimal | None
Kind = Literal["Boolean", "Integer", "Long", "Double", "BigDecimal", "String"]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
# Java's String.trim(): every char up to U+0020, control characters included.
_JAVA_TRIM = "".join(chr(c) for c in range(0x21))
_DOUBLE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?")
_HEX_DOUBLE = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F]+\.?|[0-9a-fA-F]*\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?"
)


class EvaluationFailed(MsgbusError):
    """ActiveMQ throws here (a RuntimeException or ClassCastException while evaluating)."""


class NumberFormatError(Exception):
    """Java's NumberFormatException."""


def kind(value: JavaValue) -> Kind:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, JInt):
        return "Integer"
    if isinstance(value, JLong):
        return "Long"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, Decimal):
        return "BigDecimal"
    assert isinstance(value, str)
    return "String"


def _wrap(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _parse_integer(text: str, low: int, high: int) -> int:
    """Integer.valueOf / Long.valueOf: an optional sign, then Unicode decimal digits only."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not all(c.isdecimal() for c in digits):
        raise NumberFormatError(text)
    value = int("".join(str(unicodedata.decimal(c)) for c in digits))
    value = -value if text[0] == "-" else value
    if not low <= value <= high:
        raise NumberFormatError(text)
    return value


def parse_int(text: str) -> JInt:
    return JInt(_parse_integer(text, _INT_MIN, _INT_MAX))


def parse_long(text: str) -> JLong:
    return JLong(_parse_integer(text, _LONG_MIN, _LONG_MAX))


def parse_double(text: str) -> float:
    """Double.valueOf: trimmed; NaN, Infinity, decimal or hex forms, an f/d suffix."""
    text = text.strip(_JAVA_TRIM)
    body = text[1:] if text[:1] in ("+", "-") else text
    if body in ("NaN", "Infinity"):
        return math.copysign(float(body.lower()[:3]), -1.0 if text[0] == "-" else 1.0)
    if _DOUBLE.fullmatch(text):
        return float(text.rstrip("fFdD"))
    if _HEX_DOUBLE.fullmatch(text):
        return float.fromhex(text.rstrip("fFdD"))
    raise NumberFormatError(text)


def parse_number_literal(text: str) -> JavaNumber:
    """A selector's numeric literal, typed as ActiveMQ's ConstantExpression types it:
    decimal (an L suffix allowed), 0x hex and 0-led octal are Integer when they fit,
    else Long (a decimal beyond a long is a BigDecimal); with a point or exponent, Double.
    ValueError when Java's parsing would throw (a hex or octal beyond a long)."""
    lowered = text.lower()
    if lowered.startswith("0x"):
        value = int(text[2:], 16)
    elif "." in text or "e" in lowered:
        return float(text)
    elif text.startswith("0"):
        value = int(text, 8)
    else:
        value = int(text.rstrip("lL"))
        if value > _LONG_MAX:
            # BigDecimal; but one whose low 64 bits fit in an int becomes that Integer.
            low = _wrap(value, 64)
            return JInt(_wrap(value, 32)) if _INT_MIN <= low <= _INT_MAX else Decimal(value)
    if value > _LONG_MAX:
        raise ValueError(f"{text} does not fit in a long")
    return JInt(value) if value <= _INT_MAX else JLong(value)


def boolean_value_of(text: str) -> bool:
    return text.isascii() and text.lower() == "true"


def java_double_string(value: float) -> str:
    """Double.toString: plain from 10^-3 to 10^7, else computerized scientific notation."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest_digits(abs(value))
    if 1e-3 <= abs(value) < 1e7:
        point = exponent + 1
        if point <= 0:
            whole, fraction = "0", "0" * -point + digits
        else:
            padded = digits.ljust(point, "0")
            whole, fraction = padded[:point], padded[point:]
        return f"{sign}{whole}.{fraction or '0'}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest digits that read back as ``value``, and the decimal exponent of the first."""
    _, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    return text, len(text) - 1 + exponent


def java_string(value: JavaValue) -> str:
    """String.valueOf(value), as ``"text" + value`` renders it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double_string(value)
    return "null" if value is None else str(value)


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-be", "surrogatepass")


def _double_compare(a: float, b: float) -> int:
    """Double.compareTo: NaN above everything and equal to itself, -0.0 below 0.0."""
    if math.isnan(a) or math.isnan(b):
        return (math.isnan(a)) - (math.isnan(b))
    if a == b == 0:
        return (math.copysign(1, a) > 0) - (math.copysign(1, b) > 0)
    return (a > b) - (a < b)


def _compare_to(a: JavaValue, b: JavaValue) -> int:
    if isinstance(a, float) and isinstance(b, float):
        return _double_compare(a, b)
    if isinstance(a, str) and isinstance(b, str):  # String.compareTo: UTF-16 code units
        ua, ub = _utf16(a), _utf16(b)
        return (ua > ub) - (ua < ub)
    assert a is not None and b is not None and not isinstance(a, str | float)
    assert not isinstance(b, str | float)
    return (a > b) - (a < b)


def java_equals(a: JavaValue, b: JavaValue) -> bool:
    """Object.equals: same class and value (a Double by its bits, a BigDecimal with its scale)."""
    if a is None or b is None or kind(a) != kind(b):
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float):
        return _double_compare(a, b) == 0
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b and a.as_tuple().exponent == b.as_tuple().exponent
    return a == b


def compare(op: str, lv: JavaValue, rv: JavaValue) -> bool:
    """ComparisonExpression.compare with STOMP's convert_string_expressions on: a pair of
    different types is brought to one (a string to the other side's number or boolean
    type); a pair that cannot be, or a string that does not parse, is false."""
    lk, rk = kind(lv), kind(rv)
    if lk != rk:
        try:
            converted = _convert(lv, rv, lk, rk)
        except NumberFormatError:
            return False
        if converted is None:
            return False
        lv, rv = converted
    answer = _compare_to(lv, rv)
    return {
        "=": answer == 0,
        "<": answer < 0,
        "<=": answer <= 0,
        ">": answer > 0,
        ">=": answer >= 0,
    }[op]


def _convert(
    lv: JavaValue, rv: JavaValue, lk: Kind, rk: Kind
) -> tuple[JavaValue, JavaValue] | None:
    if lk == "Boolean":
        if rk == "String":  # ActiveMQ casts the Boolean to String here: ClassCastException
            raise EvaluationFailed("a boolean compared with a string (ClassCastException)")
        return None
    if lk in ("Integer", "Long", "Double") and rk == "String":
        assert isinstance(rv, str)
        parse = {"Integer": parse_int, "Long": parse_long, "Double": parse_double}[lk]
        return lv, parse(rv)
    if lk == "Integer" and rk in ("Long", "Double"):
        assert isinstance(lv, JInt)
        return (JLong(lv) if rk == "Long" else float(lv)), rv
    if lk == "Long" and rk in ("Integer", "Double"):
        assert isinstance(lv, JLong) and isinstance(rv, JInt | float)
        return (lv, JLong(rv)) if rk == "Integer" else (float(lv), rv)
    if lk == "Double" and rk in ("Integer", "Long"):
        assert isinstance(rv, JInt | JLong)
        return lv, float(rv)
    if lk == "String" and rk != "BigDecimal":
        assert isinstance(lv, str)
        if rk == "Boolean":
            return boolean_value_of(lv), rv
        parse = {"Integer": parse_int, "Long": parse_long, "Double": parse_double}[rk]
        return parse(lv), rv
    return None


def _number_type(a: JavaNumber, b: JavaNumber) -> Literal["Integer", "Long", "Double"]:
    if isinstance(a, float) or isinstance(b, float):
        return "Double"
    if isinstance(a, JLong) or isinstance(b, JLong):
        return "Long"
    return "Integer"


def arithmetic(op: str, lv: JavaValue, rv: JavaValue) -> JavaValue:
    """ArithmeticExpression: ``+`` on a string left side concatenates; otherwise the left
    side must be a number and the right side too, or ActiveMQ throws."""
    if op == "+" and isinstance(lv, str):
        return lv + java_string(rv)
    if not isinstance(lv, JInt | JLong | float | Decimal):
        raise EvaluationFailed(f"{op} on a string or boolean left side (a RuntimeException)")
    if not isinstance(rv, JInt | JLong | float | Decimal):
        raise EvaluationFailed(f"{op} with a string or boolean right side (a RuntimeException)")
    if op in ("/", "%"):
        return _divide(op, float(lv), float(rv))
    result_type = _number_type(lv, rv)
    if result_type == "Double":
        a, b = float(lv), float(rv)
        return a + b if op == "+" else a - b if op == "-" else a * b
    bits = 64 if result_type == "Long" else 32
    # intValue()/longValue(): the low bits (a BigDecimal truncated first).
    x, y = _wrap(int(lv), bits), _wrap(int(rv), bits)
    raw = x + y if op == "+" else x - y if op == "-" else x * y
    return JLong(_wrap(raw, 64)) if bits == 64 else JInt(_wrap(raw, 32))


def _divide(op: str, a: float, b: float) -> float:
    if op == "%":
        try:
            return math.fmod(a, b)
        except ValueError:  # x % 0 and infinity % y: NaN in Java
            return math.nan
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def negate(value: JavaValue) -> JavaValue:
    """UnaryExpression.createNegate: a number negated (Integer and Long wrap); else null."""
    if not isinstance(value, JInt | JLong | float | Decimal):
        return None
    if isinstance(value, JInt):
        return JInt(_wrap(-value, 32))
    if isinstance(value, JLong):
        return JLong(_wrap(-value, 64))
    if isinstance(value, Decimal):
        return JLong(_LONG_MIN) if -value == _LONG_MIN else -value
    return -value
