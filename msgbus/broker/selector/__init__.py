"""JMS message selectors over STOMP headers, evaluated exactly as ActiveMQ 5.17 does.

``Selector.parse("state = 'DONE' AND prio >= 4")`` compiles once; ``matches`` then decides
for one message's headers. Parsing follows ActiveMQ's SelectorParser.jj (``grammar``),
evaluation its org.apache.activemq.filter classes (``expressions``, ``java``), and the
headers are read as its STOMP converter leaves them (``properties``). The rules that
surprise, all checked against a real ActiveMQ by tests/integration/interop:

* ActiveMQ prefixes every STOMP selector with ``convert_string_expressions:``: a string
  compared with a number is converted to that number's Java type. ``prio >= 4`` and
  ``prio = 5`` select ``prio:5`` (and ``+5``, ``05``). Against an integer literal the
  string must be a plain integer (Integer.valueOf: ``5.0``, `` 5``, ``0x10``, ``1e3`` fail);
  against a decimal literal (``prio > 4.5``) it is read by Double.valueOf (spaces trimmed,
  ``1e3``, ``5d``, ``NaN`` accepted). A string that does not convert makes the comparison
  false, not unknown, so ``NOT (prio = 5)`` selects ``prio:abc``. Against TRUE/FALSE a
  string is true only if it reads "true" in any case (``flag = FALSE`` selects ``flag:5``).
* Literal types are Java's: ``5`` an Integer, beyond 32 bits a Long, ``010`` octal (8),
  ``0x10`` hex, ``5.0``/``1e3`` a Double; a string header checked against an Integer must
  fit in 32 bits.
* ``= <>`` with a missing header: ``missing = 'a'`` is unknown, but ``'a' = missing`` is
  false (so ``NOT ('a' = missing)`` selects); two missing headers are equal.
* ``NOT`` binds tighter than comparisons: ``NOT a = 'x'`` is ``(NOT a) = 'x'``; write
  ``NOT (a = 'x')``. A bare property as a condition is true only if it is a boolean, which a
  STOMP header never is. ``IN`` and ``LIKE`` need a string (``prio IN ('5')`` selects
  ``prio:5``); ``LIKE``'s escape character escapes only ``%``, ``_`` and itself.
* ``+`` after a string concatenates (``prio + 1 = '51'``); other arithmetic on a string makes
  ActiveMQ throw while dispatching (its queue then stalls, logging "Failed to page in more
  queue messages"); here such a message is simply not selected. ``/`` always divides as
  doubles; Integer and Long overflow wrap as in Java.
* The STOMP headers ``priority``, ``type``, ``timestamp``, ``expires``, ``persistent``,
  ``correlation-id`` and ``reply-to`` are JMS fields, read only as JMSPriority (4 when
  absent), JMSType, JMSTimestamp, JMSExpiration, JMSDeliveryMode ('PERSISTENT' or
  'NON_PERSISTENT'), JMSCorrelationID and JMSReplyTo; a selector naming ``priority`` sees
  nothing. Identifiers are ASCII letters, digits, ``_`` and ``$``.
* A selector ActiveMQ refuses is refused (InvalidSelector, an ERROR frame to the client):
  ``'x' > 1``, ``TRUE = 1``, ``a = NULL``, ``a NOT = 1``, ``(a = 1) > 0``, ``5``.

Not reproduced: function calls, XPATH and XQUERY (refused here); a JMSTimestamp without a
timestamp header is the moment of selection (ActiveMQ: of the send).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from msgbus.broker.selector.expressions import Expression
from msgbus.broker.selector.grammar import InvalidSelector, parse
from msgbus.broker.selector.java import EvaluationFailed
from msgbus.broker.selector.properties import lookup

__all__ = ["EvaluationFailed", "InvalidSelector", "Selector"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Selector:
    text: str
    _tree: Expression

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Compile ``text``; InvalidSelector saying what is wrong and where."""
        return cls(text, parse(text))

    def evaluate(self, headers: Mapping[str, str], *, redeliveries: int = 0) -> bool:
        """Whether ActiveMQ selects the message; EvaluationFailed where ActiveMQ throws."""
        try:
            return self._tree.matches(lookup(headers, redeliveries))
        except RecursionError:
            raise EvaluationFailed("the selector is nested too deeply to evaluate") from None

    def matches(self, headers: Mapping[str, str], *, redeliveries: int = 0) -> bool:
        """Whether the message is selected; one ActiveMQ cannot evaluate is not."""
        try:
            return self.evaluate(headers, redeliveries=redeliveries)
        except EvaluationFailed as exc:
            _warn_once(self.text, str(exc))
            return False


@functools.lru_cache(maxsize=256)
def _warn_once(selector: str, reason: str) -> None:
    # Unselected messages are tried again at every dispatch: once per selector is enough.
    log.warning(
        "selector %r cannot be evaluated on some messages (%s); they are not selected, "
        "where ActiveMQ would stall the queue: fix the selector",
        selector,
        reason,
    )
