"""Envelope heads: whatever path encodes them, a broker parses the headers we meant."""

from __future__ import annotations

import pytest

from msgbus.publish import ID_HEADER, Envelope
from msgbus.stomp import FrameParser
from msgbus.stomp.frames import SendFrame


def _sent_headers(env: Envelope, version: str) -> dict[str, str]:
    wire = b"".join(env.frame_parts(b"SEND\npersistent:true\n", version))
    [frame] = FrameParser(role="server", version=version).feed(wire)
    assert isinstance(frame, SendFrame) and frame.body == env.body
    return frame.headers


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
@pytest.mark.parametrize(
    ("headers", "msgbus_id"),
    [
        ({}, None),  # the hot path: our own id, no extra headers
        ({"content-type": "text/plain", "siteName": "A:B"}, None),
        ({}, "id with spaces/and:colons"),  # an id that is not plain
        ({"destination": "/queue/theirs", ID_HEADER: "theirs"}, "ours"),  # ours win
    ],
)
def test_head_carries_destination_headers_and_id(
    version: str, headers: dict[str, str], msgbus_id: str | None
) -> None:
    env = (
        Envelope("/queue/a", b"body\0", headers)
        if msgbus_id is None
        else Envelope("/queue/a", b"body\0", headers, msgbus_id)
    )
    sent = _sent_headers(env, version)
    expected = {**headers, "destination": "/queue/a", ID_HEADER: env.msgbus_id}
    assert sent == {"persistent": "true", **expected, "content-length": "5"}
