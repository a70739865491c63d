"""``msgbus bench``: throughput of msgbus components against a baseline in the same run.

Each subcommand runs one workload twice (ours and a baseline) and prints msgs/s for
both and their ratio; speed is shown here, never asserted in tests.
"""

from __future__ import annotations

import click


@click.group()
def bench() -> None:
    """Measure msgbus throughput against a baseline (prints msgs/s and the ratio)."""
