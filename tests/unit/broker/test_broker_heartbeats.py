"""The embedded broker beats at the interval it promised (issue 24, finding 6), on a
fake clock: an event loop whose time only moves when the test moves it."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable

from tests.unit.broker.wire import Wire, open_broker


class FakeClockLoop(asyncio.SelectorEventLoop):
    """Timers fire when ``now`` passes them; never sleep for real (only sleep(0))."""

    def __init__(self) -> None:
        super().__init__(selectors.DefaultSelector())
        self.now = 1000.0

    def time(self) -> float:
        return self.now


def run_on_fake_clock(scenario: Callable[[FakeClockLoop], Awaitable[None]]) -> None:
    loop = FakeClockLoop()
    try:
        loop.run_until_complete(scenario(loop))
    finally:
        loop.close()


async def beat_times(loop: FakeClockLoop, wire: Wire, until: float, step: float) -> list[float]:
    """The fake times (since now) at which a heart-beat came out, watching in ``step``s."""
    start, seen = loop.now, []
    while loop.now - start < until:
        loop.now += step
        for _ in range(5):
            await asyncio.sleep(0)
        if wire.transport.written:
            assert bytes(wire.transport.written).strip(b"\r\n") == b"", "only beats expected"
            seen.append(round(loop.now - start, 3))
            wire.transport.written.clear()
    return seen


def test_an_idle_connection_gets_a_beat_within_the_promised_interval() -> None:
    async def scenario(loop: FakeClockLoop) -> None:
        wire = Wire(await open_broker(heartbeat_ms=(10_000, 10_000)))
        wire.send("CONNECT", accept_version="1.2", host="x", heart_beat="0,10000")
        [connected] = await wire.receive()
        assert connected.headers["heart-beat"] == "10000,10000"
        # CONNECTED went out at 0: it is not a beat, but the next one is due at 10 s.
        beats = await beat_times(loop, wire, 45, 0.25)
        assert beats[0] <= 10.0
        gaps = [b - a for a, b in zip([0.0, *beats], beats, strict=False)]
        assert max(gaps) <= 10.0, beats
        assert len(beats) >= 4, beats

    run_on_fake_clock(scenario)


def test_a_frame_between_beats_does_not_stretch_the_gap() -> None:
    async def scenario(loop: FakeClockLoop) -> None:
        wire = Wire(await open_broker(heartbeat_ms=(10_000, 10_000)))
        wire.send("CONNECT", accept_version="1.2", host="x", heart_beat="0,10000")
        await wire.receive()
        loop.now += 9.5
        wire.send("SUBSCRIBE", destination="/queue/hb", id="1", receipt="r")
        [receipt] = await wire.receive()
        assert receipt.command == "RECEIPT"
        # The last output was at 9.5 s: the next beat is due by 19.5 s, not at 30 s.
        beats = await beat_times(loop, wire, 12, 0.25)
        assert beats and beats[0] <= 10.0, beats

    run_on_fake_clock(scenario)
