"""MESSAGE frames to storable messages and dead letters.

A body may carry several messages: the valid ones are stored, each invalid one (and
a body that cannot be read at all) becomes a dead letter with the frame's headers,
the raw body and the reason. A body in no msgbus format at all (APEL records, Avro)
is kept as it came when the consumer stores foreign payloads; a directory-queue
consumer keeps every body as it came (``opaque``). The deduplication key is the
publisher's ``msgbus-id`` (the same across its retries and spooling), else the
broker's ``message-id``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from msgbus.errors import ConfigError, SchemaError
from msgbus.numbering import parse_ranges
from msgbus.schema.body import decode_body, is_foreign
from msgbus.schema.models import Message
from msgbus.security import load_smime
from msgbus.stomp.frames import MessageFrame
from msgbus.stomp.headers import (
    EMPAID_HEADER,
    ID_HEADER,
    LAST_HEADER,
    SKIPPED_HEADER,
    SYNC_HEADER,
    read_number,
)
from msgbus.store.database import DeadLetter, RawMessage, StoredMessage, dedup_key
from msgbus.store.ledger import LedgerBatch, SyncRecord

__all__ = [
    "Sorted",
    "Verifier",
    "dead_letter",
    "publish_time",
    "signature_verifier",
    "sort_frames",
]

Verifier = Callable[[bytes], tuple[bytes, str]]
"""Checks a signed body and returns the content and the signer's DN; raises SchemaError
(SignatureError) when it is refused. Other errors (e.g. no openssl) are not the
message's fault and propagate."""


def signature_verifier(
    allowed_dns: Sequence[str], ca: Path | None, decrypt_with: tuple[Path, Path] | None = None
) -> Verifier:
    """S/MIME verification as APEL SSM's receiver does it: an encrypted body is
    decrypted first with ``decrypt_with`` (this host's certificate and key), then the
    signature is checked against ``ca`` (file or directory), accepting only signers in
    ``allowed_dns`` (either DN notation)."""
    if ca is None:
        raise ConfigError(
            "consumer.allowed_signers needs consumer.signer_ca, the CA file or directory "
            "the signers' certificates chain to (--signer-ca)"
        )
    ca_file, ca_path = (None, ca) if ca.is_dir() else (ca, None)
    allowed = list(allowed_dns)
    smime = load_smime()

    def check(body: bytes) -> tuple[bytes, str]:
        if decrypt_with is not None and smime.is_encrypted(body):
            body = smime.decrypt(body, *decrypt_with)
        verified = smime.verify(body, ca_file=ca_file, ca_path=ca_path, allowed_dns=allowed)
        return verified.content, verified.signer_dn

    return check


@dataclass(slots=True)
class Sorted:
    """The frames of a batch split into what to store and what to dead-letter."""

    messages: list[StoredMessage] = field(default_factory=list)
    origins: list[MessageFrame] = field(default_factory=list)
    """The frame each of ``messages`` came from."""
    dead: list[DeadLetter] = field(default_factory=list)
    published: list[float] = field(default_factory=list)
    """Publish times (epoch seconds) of the frames that carried one, for the lag metric."""
    ledger: LedgerBatch = field(default_factory=LedgerBatch)
    """What the frames tell the completeness ledger (numbers, ends of runs)."""
    raw: list[RawMessage] = field(default_factory=list)
    """Bodies kept as they came: foreign payloads, or every body when ``opaque``."""


def message_key(frame: MessageFrame) -> str:
    headers = frame.headers
    return dedup_key(headers.get(ID_HEADER) or headers.get("message-id") or "")


def publish_time(frame: MessageFrame) -> float | None:
    """The broker's publish timestamp (``timestamp`` header, epoch milliseconds)."""
    value = frame.headers.get("timestamp")
    if value is None or not value.isdigit():
        return None
    return int(value) / 1000.0


def sort_frames(
    frames: Iterable[MessageFrame],
    verify: Verifier | None = None,
    *,
    ledger: bool = True,
    foreign: bool = False,
    opaque: bool = False,
) -> Sorted:
    """Decode each frame's body; a frame with no id at all is dead-lettered under a
    made-up key (it cannot be deduplicated, and silently dropping it would lose it).
    ``ledger``: account for the frames in ``Sorted.ledger`` too. ``foreign``: keep a
    body in no msgbus format in ``Sorted.raw`` instead of dead-lettering it.
    ``opaque``: decode nothing, every (verified) body goes to ``Sorted.raw``."""
    out = Sorted()
    for frame in frames:
        headers = frame.headers
        if SYNC_HEADER in headers:  # an older publisher's end of a run, not data
            sync = sync_record(frame)
            if sync is not None:
                out.ledger.syncs.append(sync)
                continue
        key = message_key(frame)
        sent = publish_time(frame)
        if sent is not None:
            out.published.append(sent)
        if not key:
            key = f"no-id-{time.time_ns()}-{id(frame)}"
            reason = "the message has neither msgbus-id nor message-id"
            out.dead.append(dead_letter(frame, key, 0, reason))
            continue
        opened = _open(frame, key, verify, out.dead)
        if opened is None:
            continue
        body, signer = opened
        if opaque:
            out.raw.append(_raw(frame, key, body, signer))
            continue
        first = len(out.messages)
        results = decode_body(body, headers)
        if foreign and all(r.message is None for r in results) and is_foreign(body, headers):
            out.raw.append(_raw(frame, key, body, signer))
            results = []
        for result in results:
            part = result.message_no or 0
            if result.message is not None:
                out.messages.append(StoredMessage(key, part, result.message))
                out.origins.append(frame)
            else:
                out.dead.append(dead_letter(frame, key, part, result.reason))
        if ledger:
            speaker = out.messages[first].message if len(out.messages) > first else None
            _account(out.ledger, frame, speaker)
    return out


def _open(
    frame: MessageFrame, key: str, verify: Verifier | None, dead: list[DeadLetter]
) -> tuple[bytes, str | None] | None:
    """The frame's content and signer (verified when ``verify`` is given), or None
    after dead-lettering a refused one: with the content and signer when only the
    signer was refused, as SSM's receiver keeps them in its reject queue."""
    if verify is None:
        return frame.body, None
    try:
        return verify(frame.body)
    except SchemaError as exc:
        letter = dead_letter(frame, key, 0, f"signature refused: {exc}")
        verified = getattr(exc, "verified", None)  # smime.SignerNotAllowed
        if verified is not None:
            letter = replace(letter, body=verified.content, signer=verified.signer_dn)
        dead.append(letter)
        return None


def _raw(frame: MessageFrame, key: str, body: bytes, signer: str | None) -> RawMessage:
    """A body kept as it came. APEL SSM's sender resends an element it was not sure
    of under the same ``empa-id`` (its queue element's name) but a new broker id: from
    a verified signer, that pair is the key, so the resend is stored once."""
    headers = frame.headers
    empaid = headers.get(EMPAID_HEADER)
    if ID_HEADER not in headers and empaid and signer is not None:
        key = dedup_key(f"empa-id:{signer}:{empaid}")
    return RawMessage(key, headers, body, signer, headers.get("destination"))


def _account(ledger: LedgerBatch, frame: MessageFrame, message: Message | None) -> None:
    """A numbered frame arrived (whatever became of its body); else count it unnumbered."""
    headers = frame.headers
    number = read_number(headers)  # compact or legacy headers
    if number is None:
        ledger.unsequenced += 1
        return
    key, seq = (number[0], number[1]), number[2]
    if ledger.arrived(key, seq) or (key not in ledger.origins and message is not None):
        values = message.index_values() if message is not None else {}
        site, host = values.get("site"), values.get("host")
        ledger.origins[key] = (
            site if isinstance(site, str) else None,
            host if isinstance(host, str) else None,
            headers.get("destination"),
        )
    last = headers.get(LAST_HEADER)
    if last is not None and last.isascii() and last.isdigit():
        # The run's last message: malformed skipped ranges are not taken on trust (those
        # numbers then count as missing, the safe side).
        skipped = parse_ranges(headers.get(SKIPPED_HEADER, "")) or ()
        ledger.syncs.append(
            SyncRecord(key[0], key[1], int(last), tuple(skipped), headers.get("destination"))
        )


def sync_record(frame: MessageFrame) -> SyncRecord | None:
    """An older publisher's sync record (JSON: producer, epoch, last, skipped ranges);
    None when it is malformed, so the frame is dead-lettered like any unreadable body."""
    try:
        data = json.loads(frame.body)
        return SyncRecord(
            producer=str(data["producer"]),
            epoch=int(data["epoch"]),
            last=int(data["last"]),
            skipped=tuple((int(a), int(b)) for a, b in data.get("skipped", [])),
            destination=frame.headers.get("destination"),
        )
    except (ValueError, KeyError, TypeError):
        return None


def dead_letter(frame: MessageFrame, key: str, part: int, reason: str) -> DeadLetter:
    """``frame`` (headers and raw body) as the dead letter of its message ``part``."""
    return DeadLetter(
        msg_id=key,
        part=part,
        reason=reason or "invalid message",
        headers=frame.headers,
        body=frame.body,
        destination=frame.headers.get("destination"),
    )
