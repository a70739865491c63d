"""The SQLite spool: order, durability across reopen, the size bound, the drain lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msgbus.errors import PublishError, SpoolFull
from msgbus.publish import Envelope, Spool


def _env(i: int, size: int = 10) -> Envelope:
    return Envelope("/queue/t", b"x" * size, {"n": str(i)})


def test_messages_come_back_in_order_with_id_headers_and_body(tmp_path: Path) -> None:
    envs = [_env(i) for i in range(5)]
    with Spool(tmp_path, 1 << 20) as spool:
        assert spool.add(envs) == 5
        got = [m.envelope for m in spool.peek(10)]
    assert [(e.msgbus_id, e.destination, dict(e.headers), e.body) for e in got] == [
        (e.msgbus_id, e.destination, dict(e.headers), e.body) for e in envs
    ]


def test_peek_after_seq_pages_through(tmp_path: Path) -> None:
    with Spool(tmp_path, 1 << 20) as spool:
        spool.add([_env(i) for i in range(7)])
        first = spool.peek(3)
        second = spool.peek(3, first[-1].seq)
        third = spool.peek(3, second[-1].seq)
    assert [m.envelope.headers["n"] for m in first + second + third] == [str(i) for i in range(7)]


def test_rows_survive_reopening(tmp_path: Path) -> None:
    envs = [_env(i) for i in range(3)]
    with Spool(tmp_path, 1 << 20) as spool:
        spool.add(envs)
    with Spool(tmp_path, 1 << 20) as spool:
        assert [m.envelope.msgbus_id for m in spool.peek(10)] == [e.msgbus_id for e in envs]
        assert spool.status().count == 3


def test_remove_forgets_only_the_given_ids(tmp_path: Path) -> None:
    envs = [_env(i) for i in range(4)]
    with Spool(tmp_path, 1 << 20) as spool:
        spool.add(envs)
        spool.remove([envs[1].msgbus_id, envs[3].msgbus_id])
        left = [m.envelope.msgbus_id for m in spool.peek(10)]
        status = spool.status()
    assert left == [envs[0].msgbus_id, envs[2].msgbus_id]
    assert status.count == 2
    assert status.bytes == envs[0].size + envs[2].size


def test_the_same_msgbus_id_is_stored_once(tmp_path: Path) -> None:
    env = _env(1)
    with Spool(tmp_path, 1 << 20) as spool:
        spool.add([env])
        spool.add([env])
        assert len(spool) == 1


def test_bound_stores_the_prefix_that_fits_and_names_the_rest(tmp_path: Path) -> None:
    envs = [_env(i, size=400) for i in range(5)]  # ~403 bytes each with the header
    with Spool(tmp_path, 1024) as spool:
        stored = spool.add(envs)
        assert stored == 2
        assert [m.envelope.msgbus_id for m in spool.peek(10)] == [e.msgbus_id for e in envs[:2]]
        error = spool.full_error(3)
    assert isinstance(error, SpoolFull)
    assert "3 message(s)" in str(error) and "msgbus spool drain" in str(error)


def test_unusable_directory_is_a_publish_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(PublishError, match="cannot open the spool"):
        Spool(blocker / "spool", 1 << 20)


def test_only_one_drainer_at_a_time_across_processes(tmp_path: Path) -> None:
    Spool(tmp_path, 1 << 20).close()
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from msgbus.publish import Spool\n"
            f"s = Spool(Path({str(tmp_path)!r}), 1 << 20)\n"
            "with s.drain_lock() as ok:\n"
            "    print(ok, flush=True); time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "True"
            with Spool(tmp_path, 1 << 20) as spool, spool.drain_lock() as ok:
                assert ok is False
        finally:
            holder.kill()
    with Spool(tmp_path, 1 << 20) as spool, spool.drain_lock() as ok:
        assert ok is True


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 300)), max_size=30))
def test_totals_match_the_rows_after_any_adds_and_removes(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[bool, int]]
) -> None:
    directory = tmp_path_factory.mktemp("spool")
    model: dict[str, int] = {}
    with Spool(directory, 4096) as spool:
        for add, size in ops:
            if add or not model:
                env = Envelope("/queue/p", b"y" * size)
                if spool.add([env]):
                    model[env.msgbus_id] = env.size
                else:
                    assert sum(model.values()) + env.size > 4096
            else:
                victim = next(iter(model))
                spool.remove([victim])
                del model[victim]
        status = spool.status()
        assert status.count == len(model)
        assert status.bytes == sum(model.values())
        assert [m.envelope.msgbus_id for m in spool.peek(100)] == list(model)


_ADDER = """
import sys
from pathlib import Path
from msgbus.publish import Envelope, Spool
with Spool(Path(sys.argv[1]), 1 << 30) as spool:
    for batch in range(20):
        envs = [Envelope("/queue/c", b"%s-%d-%d" % (sys.argv[2].encode(), batch, i))
                for i in range(10)]
        assert spool.add(envs) == 10
        if batch % 4 == 3:
            spool.remove([m.envelope.msgbus_id for m in spool.peek(5)
                          if m.envelope.body.startswith(sys.argv[2].encode())])
"""


def test_processes_sharing_a_spool_directory_lose_nothing(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", _ADDER, str(tmp_path), f"p{n}"]) for n in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with Spool(tmp_path, 1 << 30) as spool:
        rows = [m.envelope for m in spool.peek(10_000)]
        status = spool.status()
    assert status.count == len(rows) == len({e.msgbus_id for e in rows})
    assert status.bytes == sum(e.size for e in rows)
    for n in range(3):
        mine = [e.body for e in rows if e.body.startswith(b"p%d-" % n)]
        # 200 added, at most 5 removed per 4 batches (the rows it saw first).
        assert 200 - 25 <= len(mine) <= 200
        # Each process's own rows stay in the order it added them.
        order = [tuple(int(x) for x in b.split(b"-")[1:]) for b in mine]
        assert order == sorted(order)


def test_a_rejected_message_is_set_aside_with_its_reason(tmp_path: Path) -> None:
    envs = [_env(i) for i in range(3)]
    with Spool(tmp_path, 1 << 20) as spool:
        spool.add(envs)
        spool.reject(envs[0].msgbus_id, "frame too large")
        assert [m.envelope.msgbus_id for m in spool.peek(10)] == [e.msgbus_id for e in envs[1:]]
        status = spool.status()
        row = spool._db.execute("SELECT msgbus_id, reason, body FROM rejected").fetchone()
    assert (status.count, status.rejected) == (2, 1)
    assert status.bytes == envs[1].size + envs[2].size
    assert row == (envs[0].msgbus_id, "frame too large", envs[0].body)


def test_the_last_error_is_kept_until_cleared(tmp_path: Path) -> None:
    with Spool(tmp_path, 1 << 20) as spool:
        assert spool.status().last_error is None
        spool.note_error("login refused")
        spool.note_error("no broker could be reached")
    with Spool(tmp_path, 1 << 20) as spool:
        status = spool.status()
        assert status.last_error == "no broker could be reached"
        assert status.last_error_at is not None
        spool.note_error(None)
        assert spool.status().last_error is None
