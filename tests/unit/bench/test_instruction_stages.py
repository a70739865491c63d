"""The instruction harness counts per-message work per stage: set-up cancels out (runs
with N and 2N), each stage gets its own count, and the paths it runs under callgrind
really run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from msgbus.bench.instructions import (
    CONSUMER_STAGES,
    PUBLISHER_STAGES,
    consumer_path,
    count_instructions,
    per_message,
    publisher_path,
    read_segments,
)
from msgbus.errors import ConfigError


def test_set_up_cancels_and_each_stage_is_its_own_difference() -> None:
    # set-up 1000 (+ 50 per message of test data), stages 10/20/30/40 per message, exit 7.
    def run(n: int) -> list[int]:
        return [1000 + 50 * n, 10 * n + 3, 20 * n, 30 * n + 100, 40 * n, 7]

    counts = per_message("publisher", 100, run(100), run(200))
    assert counts.stages == {"read": 10, "validate": 20, "frame": 30, "send": 40}
    assert counts.total == 100
    assert counts.naive == sum(run(100)) / 100  # what the old harness reported


def test_a_stray_marker_is_refused() -> None:
    extra = [1] * (len(CONSUMER_STAGES) + 3)
    with pytest.raises(ConfigError, match="expected 8"):
        per_message("consumer", 10, extra, extra)


def test_segments_are_read_in_the_order_callgrind_dumped_them(tmp_path: Path) -> None:
    out = tmp_path / "cg"
    for suffix, total in [(".1", 5), (".2", 6), (".10", 14), (".9", 13), ("", 99)]:
        (tmp_path / f"cg{suffix}").write_text(f"events: Ir\nsummary: {total}\ntotals: {total}\n")
    assert read_segments(out) == [5, 6, 13, 14, 99]


def test_the_paths_run_every_stage(tmp_path: Path) -> None:
    assert consumer_path(30, f"sqlite:///{tmp_path / 's.db'}") == 30
    assert publisher_path(30) == 30


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_callgrind_counts_each_publisher_stage() -> None:
    # The publisher path: its set-up is half the consumer's under callgrind (~1 min).
    counts = count_instructions("publisher", 20)
    assert list(counts.stages) == list(PUBLISHER_STAGES)
    assert all(n > 1000 for n in counts.stages.values()), counts.stages
    assert counts.naive > 10 * counts.total  # the set-up no longer counts per message
