"""Headers msgbus itself puts on messages (documented for other clients in
``schemas/README.md``): publisher and consumer agree on them through this module."""

from __future__ import annotations

__all__ = [
    "EMPAID_HEADER",
    "EPOCH_HEADER",
    "ID_HEADER",
    "LAST_HEADER",
    "PRODUCER_HEADER",
    "SEQ_HEADER",
    "SKIPPED_HEADER",
    "SYNC_HEADER",
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
"""The message's number in its producer's epoch: 1, 2, 3, ... without gaps."""
LAST_HEADER = "msgbus-last"
"""On the last message of a producer's run (per destination): the last number it sent,
which is that message's own; the consumer's ledger learns the end of the run from it."""
SKIPPED_HEADER = "msgbus-skipped"
"""Beside ``msgbus-last`` when the producer gave numbers up (refused by a broker, or
neither delivered nor spooled): ranges such as ``12,40-45`` (msgbus.numbering)."""
SYNC_HEADER = "msgbus-sync"
"""Set ("1") on the separate sync record older publishers sent at the end of a run (a
JSON body with the last number and the skipped ranges); still understood, never stored."""
