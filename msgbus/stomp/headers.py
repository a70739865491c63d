"""Headers msgbus itself puts on messages (documented for other clients in
``schemas/README.md``): publisher and consumer agree on them through this module."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "EMPAID_HEADER",
    "EPOCH_HEADER",
    "ID_HEADER",
    "LAST_HEADER",
    "PRODUCER_HEADER",
    "SEQ_HEADER",
    "SKIPPED_HEADER",
    "SYNC_HEADER",
    "Numbered",
    "compact_number",
    "read_number",
]

EMPAID_HEADER = "empa-id"
"""The message id APEL's SSM sender sets: the name of its outgoing queue element."""

ID_HEADER = "msgbus-id"
"""The publisher-assigned id; it never changes across retries and spooling, so
consumers can drop duplicates."""
PRODUCER_HEADER = "msgbus-producer"
"""Who numbered the message: one id per publisher spool and destination."""
EPOCH_HEADER = "msgbus-epoch"
"""When the producer's numbering started (Unix milliseconds); a new epoch starts at 1."""
SEQ_HEADER = "msgbus-seq"
"""The message's number in its producer's epoch: 1, 2, 3, ... without gaps. Compact
(what publishers send by default): ``<producer>/<epoch>/<n>`` alone; legacy: ``<n>``
beside the producer and epoch headers (see :func:`read_number`)."""
LAST_HEADER = "msgbus-last"
"""On the last message of a producer's run (per destination): the last number it sent,
which is that message's own; the consumer's ledger learns the end of the run from it."""
SKIPPED_HEADER = "msgbus-skipped"
"""Beside ``msgbus-last`` when the producer gave numbers up (refused by a broker, or
neither delivered nor spooled): ranges such as ``12,40-45`` (msgbus.numbering)."""
SYNC_HEADER = "msgbus-sync"
"""Set ("1") on the separate sync record older publishers sent at the end of a run (a
JSON body with the last number and the skipped ranges); still understood, never stored."""

Numbered = tuple[str, int, int]
"""Producer, epoch and number of a numbered message."""


def compact_number(producer: str, epoch: int, seq: int) -> str:
    """The compact ``msgbus-seq`` value: one header where the legacy numbering took three
    (ActiveMQ pays per header: docs/performance.md)."""
    return f"{producer}/{epoch}/{seq}"


def read_number(headers: Mapping[str, str]) -> Numbered | None:
    """Producer, epoch and number of a message in either form, or None when it carries
    no valid numbering (it is then *unnumbered*). The producer is what precedes the
    last two ``/``: a producer id of another client may hold ``/`` itself."""
    value = headers.get(SEQ_HEADER)
    if value is None:
        return None
    producer = headers.get(PRODUCER_HEADER)
    if producer is None:
        producer, _, rest = value.rpartition("/")
        producer, _, epoch = producer.rpartition("/")
        seq = rest
    else:
        epoch, seq = headers.get(EPOCH_HEADER, ""), value
    if not producer or not _number(epoch) or not _number(seq):
        return None
    return producer, int(epoch), int(seq)


def _number(text: str) -> bool:
    # ASCII only: str.isdigit() passes "²", which int() refuses.
    return text.isascii() and text.isdigit()
