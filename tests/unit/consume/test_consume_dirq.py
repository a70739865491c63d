"""The directory-queue sink in SSM's layout, read back with dirq as APEL's loader does."""

from __future__ import annotations

from pathlib import Path

import pytest
from dirq.queue import Queue

from msgbus.consume.dirq import DirqSink
from msgbus.errors import ConfigError
from msgbus.store.database import DeadLetter, RawMessage
from msgbus.store.dirq import SSM_REJECT_SCHEMA

LOADER_SCHEMA = {"body": "string", "signer": "string", "empaid": "string?", "error": "string?"}


def _read(path: Path, schema: dict[str, str]) -> list[dict[str, str]]:
    queue = Queue(str(path), schema=schema)
    return [queue.get_element(name) for name in queue]


def test_bodies_signers_and_empaids_as_ssm_writes_them(tmp_path: Path) -> None:
    sink = DirqSink(tmp_path)
    text = "APEL-summary-job-message: v0.2\nSite: Ü\n%%\n"
    result = sink.write(
        [],
        [DeadLetter("m3", 0, "signature refused: x", {"empa-id": "e3"}, b"junk")],
        foreign=[
            RawMessage("m1", {"empa-id": "e1"}, text.encode(), "/CN=probe"),
            RawMessage("m2", {}, text.encode()),  # no empa-id, unsigned
            RawMessage("m4", {"empa-id": "e4"}, b"\xff\x00 binary"),
        ],
    )
    assert (result.stored, result.dead_lettered) == (2, 2)
    assert _read(tmp_path / "incoming", LOADER_SCHEMA) == [
        {"body": text, "signer": "/CN=probe", "empaid": "e1"},
        {"body": text, "signer": "Not available.", "empaid": "noid"},
    ]
    rejected = _read(tmp_path / "reject", SSM_REJECT_SCHEMA)
    assert sorted((r["empaid"], r["error"]) for r in rejected) == [
        ("e3", "signature refused: x"),
        ("e4", "the body is not UTF-8 text, which SSM's queue schema needs"),
    ]


def test_a_queue_given_as_the_ssm_directory_is_refused(tmp_path: Path) -> None:
    Queue(str(tmp_path / "q"), schema={"body": "string"})
    with pytest.raises(ConfigError, match="is itself a directory queue"):
        DirqSink(tmp_path / "q")
