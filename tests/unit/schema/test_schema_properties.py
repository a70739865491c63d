"""Property tests: every valid message round-trips; any input decodes or fails cleanly."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from msgbus.errors import DecodeError, MsgbusError
from msgbus.schema import (
    MESSAGE_TYPES,
    JobState,
    JobStatusEvent,
    Message,
    MetricStatus,
    ProbeResult,
    TransferEvent,
    TransferStatus,
    build_message,
    decode_body,
    decode_json,
    decode_wlcg,
    encode_body,
    encode_json,
    encode_wlcg,
    format_timestamp,
    parse_perfdata,
    parse_plugin_output,
)
from msgbus.schema.body import is_foreign

# Everything UTF-8 can carry; line breaks other than LF (\x85, \u2028) are fair game.
# Speed is not under test: hypothesis' per-example deadline would fail on a loaded machine.
no_deadline = settings(deadline=None)

_ANY_CHAR = st.characters(blacklist_categories=["Cs"])
_LINE_CHAR = st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00")
line = st.text(_LINE_CHAR, max_size=20)
word = st.text(_LINE_CHAR, min_size=1, max_size=20)
optional_line = st.none() | line
details = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=60
).filter(lambda s: "EOT" not in s.replace("\r", "").split("\n"))
timestamps = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(timezone.utc)
).map(lambda d: d.replace(microsecond=0))


def _perf_item(label: str, value: str, uom: str, rest: list[str]) -> tuple[str, str]:
    """A label and its item as text, the label always quoted."""
    return label, "'" + label.replace("'", "''") + "'=" + value + uom + ";" + ";".join(rest)


finite = st.floats(allow_nan=False, allow_infinity=False).map(repr)
perf_items = st.builds(
    _perf_item,
    word,
    finite | st.just("U"),
    st.sampled_from(["", "s", "ms", "%", "B", "KB", "c"]),
    st.tuples(
        st.sampled_from(["", "10", "@1:2", "~:5", "10:", "-1.5:"]),
        st.sampled_from(["", "20", "@-3:", ":7"]),
        st.just("") | finite,
        st.just("") | finite,
    ).map(list),
)
perfdata = st.lists(perf_items, min_size=1, max_size=4)
perfdata_text = perfdata.map(lambda items: " ".join(text for _, text in items))


def _extras(model: type[Message]) -> st.SearchStrategy[dict[str, str]]:
    keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True).filter(
        lambda k: k not in model.model_fields
    )
    return st.dictionaries(keys, line, max_size=3)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


def _build(model: type[Message]) -> Any:
    def make(parts: tuple[dict[str, Any], ...]) -> Message:
        data: dict[str, Any] = {}
        for part in parts:
            data.update(part)
        return build_message(model, data)

    return make


probe_results = st.tuples(
    st.fixed_dictionaries(
        {
            "serviceURI": word,
            "hostName": word,
            "siteName": word,
            "metricStatus": st.sampled_from(MetricStatus),
            "metricName": word,
            "summaryData": word,
            "timestamp": timestamps,
        }
    ),
    st.one_of(
        st.fixed_dictionaries({"serviceFlavour": word}),
        st.fixed_dictionaries({"serviceType": word}),
        st.fixed_dictionaries({"serviceFlavour": word, "serviceType": word}),
    ),
    _optional(
        gatheredAt=line,
        nagiosName=optional_line,
        role=line,
        voName=line,
        voFqan=line,
        encrypted=st.none() | st.booleans(),
        performanceData=perfdata_text,
        detailsData=details,
    ),
    _extras(ProbeResult),
).map(_build(ProbeResult))

job_events = st.tuples(
    st.fixed_dictionaries(
        {
            "jobId": word,
            "state": st.sampled_from(JobState),
            "timestamp": timestamps,
            "hostName": word,
        }
    ),
    _optional(
        previousState=st.sampled_from(JobState),
        ceId=line,
        siteName=line,
        reason=line,
        owner=line,
        voName=line,
    ),
    _extras(JobStatusEvent),
).map(_build(JobStatusEvent))

transfers = st.tuples(
    st.fixed_dictionaries(
        {
            "transferId": word,
            "source": word,
            "destination": word,
            "bytesTransferred": st.integers(min_value=0, max_value=2**63 - 1),
            "durationSeconds": st.floats(min_value=0, allow_nan=False, allow_infinity=False),
            "status": st.sampled_from(TransferStatus),
            "timestamp": timestamps,
        }
    ),
    _optional(hostName=line, sourceSite=line, destinationSite=line, voName=line, reason=line),
    _extras(TransferEvent),
).map(_build(TransferEvent))

_HEADERS_FOR_FOREIGN = st.fixed_dictionaries(
    {}, optional={"messageClass": st.sampled_from([*MESSAGE_TYPES])}
)
any_message_list = st.one_of(
    st.lists(probe_results, min_size=1, max_size=4),
    st.lists(job_events, min_size=1, max_size=4),
    st.lists(transfers, min_size=1, max_size=4),
)


@no_deadline
@given(st.lists(probe_results, max_size=4))
def test_probe_results_round_trip_wlcg(messages: list[Message]) -> None:
    assert decode_wlcg(encode_wlcg(messages)) == messages


@no_deadline
@given(st.lists(probe_results, max_size=4))
def test_probe_results_round_trip_json(messages: list[Message]) -> None:
    assert decode_json(encode_json(messages)) == messages


@given(probe_results)
def test_timestamps_serialize_in_the_wire_format(message: ProbeResult) -> None:
    # pydantic writes the timestamps (no serializer of ours): exactly the wire format.
    wire = format_timestamp(message.timestamp)
    assert json.loads(message.model_dump_json())["timestamp"] == wire
    assert message.model_dump(mode="json")["timestamp"] == wire


@given(probe_results, timestamps)
def test_wire_timestamps_parse_to_utc_itself(message: ProbeResult, when: datetime) -> None:
    fields = {**message.model_dump(mode="json"), "timestamp": format_timestamp(when)}
    parsed = build_message(ProbeResult, fields).timestamp
    # timezone.utc itself: the store skips converting exactly this tzinfo.
    assert parsed == when and parsed.tzinfo is timezone.utc


@no_deadline
@given(any_message_list, st.sampled_from(["wlcg", "json"]))
def test_every_type_round_trips_through_bodies(messages: list[Message], fmt: Any) -> None:
    body, headers = encode_body(messages, fmt=fmt)
    results = decode_body(body, headers)
    assert [r.message for r in results] == messages
    assert [r.message_no for r in results] == list(range(1, len(messages) + 1))


@no_deadline
@given(any_message_list, st.sampled_from(["wlcg", "json"]))
def test_no_message_body_of_ours_is_foreign(messages: list[Message], fmt: Any) -> None:
    body, headers = encode_body(messages, fmt=fmt)
    assert not is_foreign(body, {})  # even without the messageClass header
    assert not is_foreign(body, headers)


@no_deadline
@given(st.binary(max_size=2000), _HEADERS_FOR_FOREIGN)
def test_any_bytes_are_foreign_or_not_never_an_exception(
    body: bytes, headers: dict[str, str]
) -> None:
    assert isinstance(is_foreign(body, headers), bool)


@no_deadline
@given(perfdata)
def test_generated_perfdata_parses_item_by_item(items: list[tuple[str, str]]) -> None:
    parsed = parse_perfdata(" ".join(text for _, text in items))
    assert [p.label for p in parsed] == [label for label, _ in items]


_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.sampled_from(["application/json", "text/plain", "x/y"]),
        "messageClass": st.sampled_from([*MESSAGE_TYPES, "Other"]),
        "recordCount": st.sampled_from(["0", "1", "2", "many"]),
    },
)


def _check_results(body: bytes, headers: dict[str, str]) -> None:
    results = decode_body(body, headers)
    for result in results:
        assert (result.message is None) == bool(result.errors)
        assert all(isinstance(e, DecodeError) for e in result.errors)


@no_deadline
@given(st.binary(max_size=2000), _HEADERS)
def test_any_bytes_give_results_never_exceptions(body: bytes, headers: dict[str, str]) -> None:
    _check_results(body, headers)


@no_deadline
@given(st.binary(max_size=2000) | st.text(_ANY_CHAR, max_size=2000).map(str.encode))
def test_codecs_raise_only_msgbus_errors(data: bytes) -> None:
    for decode in (decode_wlcg, decode_json):
        for model in MESSAGE_TYPES.values():
            try:
                messages = decode(data, model)
            except MsgbusError:
                continue
            assert all(isinstance(m, model) for m in messages)


_WLCG_LIKE = st.lists(
    st.one_of(
        st.just("EOT"),
        st.sampled_from(list(ProbeResult.model_fields)).flatmap(
            lambda k: line.map(lambda v: f"{k}: {v}")
        ),
        line,
    ),
    max_size=40,
).map("\n".join)


@no_deadline
@given(_WLCG_LIKE | st.text(_ANY_CHAR, max_size=500), _HEADERS)
def test_random_text_gives_results_never_exceptions(text: str, headers: dict[str, str]) -> None:
    _check_results(text.encode(), headers)


@settings(max_examples=200, deadline=None)
@given(
    any_message_list,
    st.sampled_from(["wlcg", "json"]),
    st.lists(st.tuples(st.integers(min_value=0), st.binary(max_size=8)), min_size=1, max_size=4),
)
def test_mangled_valid_bodies_give_results(
    messages: list[Message], fmt: Any, edits: list[tuple[int, bytes]]
) -> None:
    body, headers = encode_body(messages, fmt=fmt)
    for position, replacement in edits:
        at = position % (len(body) + 1)
        body = body[:at] + replacement + body[at + len(replacement) // 2 :]
    _check_results(body, headers)


@no_deadline
@given(st.text(_ANY_CHAR, max_size=300))
def test_plugin_output_always_splits(text: str) -> None:
    summary, details_text, perf = parse_plugin_output(text)
    assert summary and "\n" not in summary and "|" not in summary
    assert "\n" not in perf
    assert details_text.count("\n") <= text.count("\n")
