"""Frames to stored messages and dead letters."""

from __future__ import annotations

import pytest

from msgbus.consume.messages import publish_time, sort_frames
from msgbus.schema.body import encode_body
from msgbus.schema.models import ProbeResult
from msgbus.security.smime import SignatureError
from msgbus.stomp.frames import MessageFrame


def _probe(site: str = "S") -> ProbeResult:
    return ProbeResult.model_validate(
        {
            "serviceURI": "https://ce.example.org",
            "hostName": "ce.example.org",
            "serviceFlavour": "CE",
            "siteName": site,
            "metricStatus": "OK",
            "metricName": "m",
            "summaryData": "ok",
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )


def _frame(body: bytes, headers: dict[str, str] | None = None, **extra: str) -> MessageFrame:
    base = {"message-id": "ID:1", "destination": "/topic/t", **(headers or {}), **extra}
    return MessageFrame(base, body)


def test_valid_bulk_body_stores_each_message_under_the_publisher_id() -> None:
    body, headers = encode_body([_probe("A"), _probe("B")], "json")
    out = sort_frames([_frame(body, headers, **{"msgbus-id": "pub-1"})])
    assert [(m.msg_id, m.part, m.message.index_values()["site"]) for m in out.messages] == [
        ("pub-1", 1, "A"),
        ("pub-1", 2, "B"),
    ]
    assert out.dead == []


def test_message_id_is_the_fallback_key() -> None:
    body, headers = encode_body(_probe(), "wlcg")
    assert sort_frames([_frame(body, headers)]).messages[0].msg_id == "ID:1"


def test_invalid_messages_are_dead_lettered_and_the_rest_stored() -> None:
    good, headers = encode_body(_probe(), "wlcg")
    bad = good.replace(b"metricStatus: OK", b"metricStatus: SUPERB")
    out = sort_frames(
        [
            _frame(good + b"EOT\n" + bad, {**headers, "recordCount": "2"}),
            _frame(b"\xff\xfe\x00garbage", {"message-id": "ID:2"}),
            _frame(good, {**headers, "messageClass": "NoSuchType", "message-id": "ID:3"}),
        ]
    )
    assert [(m.msg_id, m.part) for m in out.messages] == [("ID:1", 1)]
    reasons = {(d.msg_id, d.part): d.reason for d in out.dead}
    assert "metricStatus" in reasons[("ID:1", 2)]
    assert "not UTF-8" in reasons[("ID:2", 0)]
    assert "NoSuchType" in reasons[("ID:3", 0)]
    assert out.dead[1].body == b"\xff\xfe\x00garbage"
    assert out.dead[1].headers["message-id"] == "ID:2"
    assert out.dead[1].destination == "/topic/t"


@pytest.mark.parametrize("body", [b"", b"\n", b"EOT\n", b"[]"])
def test_a_body_without_messages_is_dead_lettered_not_acked_away(body: bytes) -> None:
    out = sort_frames([_frame(body, {"msgbus-id": "pub-9"})])
    assert out.messages == []
    [dead] = out.dead
    assert (dead.msg_id, dead.body) == ("pub-9", body)
    assert "holds no message" in dead.reason


def test_a_frame_without_any_id_is_dead_lettered_not_lost() -> None:
    body, headers = encode_body(_probe(), "wlcg")
    out = sort_frames([MessageFrame(dict(headers), body)])
    assert out.messages == []
    assert "neither msgbus-id nor message-id" in out.dead[0].reason


def test_signature_refusal_dead_letters() -> None:
    body, headers = encode_body(_probe(), "wlcg")

    def verify(data: bytes) -> tuple[bytes, str]:
        if not data.startswith(b"SIGNED:"):
            raise SignatureError("not signed by an allowed DN")
        return data.removeprefix(b"SIGNED:"), "/CN=probe"

    out = sort_frames([_frame(b"SIGNED:" + body, headers), _frame(body, headers)], verify)
    assert len(out.messages) == 1
    assert out.dead[0].reason == "signature refused: not signed by an allowed DN"


APEL_RECORDS = (
    b"APEL-individual-job-message: v0.3\nSite: RAL-LCG2\nSubmitHost: ce01.example.org\n"
    b"LocalJobId: 1\nWallDuration: 60\nCpuDuration: 50\n%%\nSite: RAL-LCG2\n"
    b"SubmitHost: ce01.example.org\nLocalJobId: 2\nWallDuration: 61\nCpuDuration: 51\n%%\n"
)


@pytest.mark.parametrize("body", [APEL_RECORDS, b"Obj\x01\x04\x16avro.schema\xff\x00", b"[1, 2]"])
def test_foreign_bodies_are_kept_as_they_came(body: bytes) -> None:
    frame = _frame(body, {"msgbus-id": "apel-1", "destination": "/queue/apel"})
    kept = sort_frames([frame], foreign=True)
    assert kept.messages == [] and kept.dead == []
    [raw] = kept.raw
    assert (raw.msg_id, raw.body, raw.destination) == ("apel-1", body, "/queue/apel")
    assert sort_frames([frame]).dead[0].body == body  # foreign: dead-letter


@pytest.mark.parametrize(
    "body",
    [
        b"siteName: S\nmetricStatus: NOT-A-STATUS\nEOT\n",
        b'{"siteName": "S"}',
        b"",
        b"\n",
        b"EOT\n",
        b"[]",
        b"garbage: without a metric\nEOT\n",
        b'{"truncated": ',
    ],
)
def test_a_broken_msgbus_message_is_still_a_dead_letter_when_foreign_bodies_are_kept(
    body: bytes,
) -> None:
    out = sort_frames([_frame(body, {"msgbus-id": "bad"})], foreign=True)
    assert out.raw == [] and len(out.dead) >= 1


def test_opaque_sorting_decodes_nothing_and_keeps_the_signer() -> None:
    body, headers = encode_body(_probe(), "wlcg")
    frames = [_frame(b"SIGNED:" + body, headers, **{"msgbus-id": "p1", "empa-id": "e1"})]
    out = sort_frames(frames, lambda data: (data.removeprefix(b"SIGNED:"), "/CN=p"), opaque=True)
    assert out.messages == []
    [raw] = out.raw
    assert (raw.body, raw.signer, raw.headers["empa-id"]) == (body, "/CN=p", "e1")


@pytest.mark.parametrize(("value", "expected"), [("1700000000500", 1700000000.5), ("x", None)])
def test_publish_time_from_the_broker_timestamp(value: str, expected: float | None) -> None:
    assert publish_time(_frame(b"", timestamp=value)) == expected
    assert publish_time(_frame(b"")) is None


def test_an_ssm_resend_from_a_verified_signer_has_one_key() -> None:
    def verify(data: bytes) -> tuple[bytes, str]:
        return data, "/CN=probe"

    def frame(broker_id: str, empaid: str) -> MessageFrame:
        return _frame(APEL_RECORDS, {"message-id": broker_id, "empa-id": empaid})

    first, resent, other = sort_frames(
        [frame("ID:1", "e/1"), frame("ID:2", "e/1"), frame("ID:3", "e/2")], verify, foreign=True
    ).raw
    assert first.msg_id == resent.msg_id != other.msg_id
    # Unverified, the empa-id alone is no key: anyone may set it.
    unsigned = sort_frames([frame("ID:1", "e/1"), frame("ID:2", "e/1")], foreign=True).raw
    assert [r.msg_id for r in unsigned] == ["ID:1", "ID:2"]


_NUMBERED = {"msgbus-producer": "p1", "msgbus-epoch": "7"}


def test_the_last_message_of_a_run_is_stored_and_ends_the_run_in_the_ledger() -> None:
    body, headers = encode_body(_probe(), "wlcg")
    frames = [
        _frame(body, {**headers, **_NUMBERED, "msgbus-seq": "1", "msgbus-id": "a"}),
        _frame(
            body,
            {**headers, **_NUMBERED, "msgbus-seq": "5", "msgbus-id": "b"},
            **{"msgbus-last": "5", "msgbus-skipped": "2,3-4"},
        ),
    ]
    out = sort_frames(frames)
    assert [m.msg_id for m in out.messages] == ["a", "b"] and out.dead == []
    assert out.ledger.numbers == {("p1", 7): [1, 5]}
    [end] = out.ledger.syncs
    assert (end.producer, end.epoch, end.last, end.skipped) == ("p1", 7, 5, ((2, 2), (3, 4)))
    assert end.destination == "/topic/t"


def test_malformed_skipped_ranges_are_not_taken_on_trust() -> None:
    body, headers = encode_body(_probe(), "wlcg")
    end = {**headers, **_NUMBERED, "msgbus-seq": "5", "msgbus-last": "5"}
    out = sort_frames([_frame(body, end, **{"msgbus-skipped": "2-x"})])
    assert len(out.messages) == 1
    assert [(s.last, s.skipped) for s in out.ledger.syncs] == [(5, ())]
    # Without the ledger, nothing is gathered for it.
    assert not sort_frames([_frame(body, end)], ledger=False).ledger


def test_an_older_publishers_sync_record_is_understood_and_never_stored() -> None:
    # What publishers before end-of-run headers sent at close (sequence.sync_records).
    record = b'{"producer": "p1", "epoch": 7, "last": 150, "skipped": [[12, 12]]}'
    sync = {"msgbus-sync": "1", **_NUMBERED, "content-type": "application/json"}
    out = sort_frames([_frame(record, sync)])
    assert (out.messages, out.dead) == ([], [])
    [end] = out.ledger.syncs
    assert (end.producer, end.epoch, end.last, end.skipped) == ("p1", 7, 150, ((12, 12),))
