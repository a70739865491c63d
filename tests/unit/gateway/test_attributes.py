"""AMS attributes as STOMP headers: any attribute dict survives a SEND and the MESSAGE a
broker makes of it (the real codec both ways, broker headers added), byte for byte, and
no header a broker or msgbus sets comes back as an attribute."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from msgbus.gateway.attributes import from_headers, to_headers
from msgbus.stomp import FrameParser, serialize
from msgbus.stomp.frames import MessageFrame, SendFrame

# What a broker puts on a MESSAGE (ActiveMQ's and the embedded broker's) and msgbus's own.
BROKER_HEADERS = {
    "destination": "/topic/ams.probes",
    "message-id": "ID:host-1:1:1:1:1",
    "subscription": "gateway.grid.sub",
    "ack": "7",
    "timestamp": "1765000000000",
    "expires": "0",
    "priority": "4",
    "persistent": "true",
    "redelivered": "false",
    "msgbus-id": "abc-1",
}
NAMES = ["type", "destination", "content-length", "msgbus-id", "message-id", "ack", "",
         "ams.attr.type", "ams.json.\"x\"", "ams.", "Type", "JMSXGroupID", "activemq.x",
         "a:b", "a\nb", "a\\cb", "\r", "\0", "\ud800"]  # fmt: skip


def _through_a_broker(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` sent, routed (broker headers set over them) and received."""
    [sent] = FrameParser(role="server").feed(serialize(SendFrame(dict(headers), b"x"), "1.2"))
    assert isinstance(sent, SendFrame)
    delivered = MessageFrame({**sent.headers, **BROKER_HEADERS}, sent.body)
    [received] = FrameParser(role="client").feed(serialize(delivered, "1.2"))
    assert isinstance(received, MessageFrame)
    return received.headers


@given(st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text()), st.text(), max_size=8))
@example({"partition_date": "2026-12-06", "type": "metric_data"})
@example({name: f"v{i}" for i, name in enumerate(NAMES)})
@example({"k": "a:b\nc\\d\re\0f\ud800"})
def test_any_attributes_round_trip_through_stomp_byte_for_byte(
    attributes: dict[str, str],
) -> None:
    assert from_headers(_through_a_broker(to_headers(attributes))) == attributes


def test_ordinary_attributes_are_plain_headers_a_stomp_consumer_reads() -> None:
    headers = to_headers({"partition_date": "2026-12-06", "type": "metric_data", "": "e"})
    assert headers == {
        "partition_date": "2026-12-06",
        "ams.attr.type": "metric_data",
        "ams.attr.": "e",
    }


def test_headers_a_stomp_publisher_set_are_attributes_but_the_brokers_are_not() -> None:
    assert from_headers({**BROKER_HEADERS, "siteName": "X", "type": "t"}) == {"siteName": "X"}


def test_an_encoded_header_that_is_not_ours_is_not_an_attribute() -> None:
    assert from_headers({"ams.json.nope": "1", 'ams.json."n"': "2", "ams.other": "3"}) == {}
