"""Bodies of one message or of several (``publisher.pack``), as MSG publishers packed
bulk results: WLCG texts one after the other, each ending in ``EOT``, or a JSON list,
with the recordCount header that consumers check against what they read.

A body of one message carries its selector headers (siteName, metricStatus, ...);
a packed body cannot, so selectors and header-based routing see only one-message
bodies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from msgbus.schema import Message, encode_body
from msgbus.schema.body import Format, body_headers

__all__ = ["MAX_PACKED_BYTES", "Body", "pack_bodies"]

# A packed body stays far below the brokers' frame limit (4 MiB as msgbus renders
# ActiveMQ and runs the embedded broker): one body is one unit of redelivery.
MAX_PACKED_BYTES = 256 * 1024

Body = tuple[bytes, dict[str, str]]


def pack_bodies(
    items: Iterable[tuple[Message, bytes]], fmt: Format, pack: int, *, lean: bool = False
) -> Iterator[Body]:
    """Body and headers for up to ``pack`` consecutive messages of one type (fewer at
    a change of type, past :data:`MAX_PACKED_BYTES` and at the end of ``items``).

    ``items`` are validated messages with their body alone, in ``fmt``; ``lean``: see
    :func:`body_headers`."""
    group: list[Message] = []
    bodies: list[bytes] = []
    size = 0
    for message, body in items:
        if group and (
            len(group) >= pack
            or type(message) is not type(group[0])
            or size + len(body) > MAX_PACKED_BYTES
        ):
            yield _body(group, bodies, fmt, lean)
            group, bodies, size = [], [], 0
        group.append(message)
        bodies.append(body)
        size += len(body)
    if group:
        yield _body(group, bodies, fmt, lean)


def _body(group: list[Message], bodies: list[bytes], fmt: Format, lean: bool) -> Body:
    if len(group) == 1:
        return bodies[0], body_headers(group, fmt, lean=lean)
    if fmt == "wlcg":  # each body already ends with its EOT line
        return b"".join(bodies), body_headers(group, fmt, lean=lean)
    return encode_body(group, fmt)[0], body_headers(group, fmt, lean=lean)
