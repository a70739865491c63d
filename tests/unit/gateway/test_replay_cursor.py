"""A subscription's cursor on the retention log (no broker: the log is filled directly):
it hands out in offset order, an acknowledgement moves the current offset to the lowest
offset still unacknowledged, and a new cursor starts there again."""

from __future__ import annotations

from pathlib import Path

from msgbus.config import load_config
from msgbus.gateway.replay import Replay, receive
from msgbus.gateway.retention import offset_of
from msgbus.stomp.frames import MessageFrame


def test_acknowledgements_move_the_current_offset_to_the_lowest_unacknowledged(
    tmp_path: Path,
) -> None:
    config = load_config(
        overrides={
            "connection": {"brokers": ["stomp://127.0.0.1:1"]},  # nothing listens
            "gateway": {"retention": {"enabled": True}},
        }
    )
    replay = Replay(config, tmp_path, [])
    try:
        cursor = replay.cursor("s", "t")  # new: at the end, 0
        frames = [MessageFrame({"msgbus-id": f"id-{n}"}, b"") for n in range(6)]
        replay.log.append("t", frames, 1000)
        got = receive(cursor, 3, 0.0)
        assert [offset_of(f) for f in got] == [0, 1, 2]
        cursor.ack([got[1]])
        assert cursor.current == 0  # 0 is handed out, not acknowledged
        cursor.ack([got[0]])
        assert cursor.current == 2
        more = receive(cursor, 2, 0.0)
        assert [offset_of(f) for f in more] == [3, 4]
        cursor.ack([got[2], *more])
        assert cursor.current == 5
        again = replay.cursor("s", "t")  # a restart, a stopped pusher, :modifyOffset
        assert [offset_of(f) for f in receive(again, 10, 0.0)] == [5]
        replay.log.set_current("s", 1)
        assert [offset_of(f) for f in receive(replay.cursor("s", "t"), 10, 0.0)] == [1, 2, 3, 4, 5]
    finally:
        replay.close()
