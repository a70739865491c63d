"""The bounded in-memory log handler behind the ``logs`` command."""

from __future__ import annotations

import logging

import pytest

from msgbus.presence.logbuffer import LogBuffer


@pytest.fixture
def logger() -> logging.Logger:
    log = logging.getLogger("msgbus.test.logbuffer")
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def test_keeps_only_the_last_lines(logger: logging.Logger) -> None:
    buf = LogBuffer(10)
    logger.addHandler(buf)
    try:
        for i in range(25):
            logger.info("line %d", i)
    finally:
        logger.removeHandler(buf)
    lines = buf.lines()
    assert len(lines) == 10
    assert lines[0].endswith("msgbus.test.logbuffer: line 15")
    assert lines[-1].endswith("line 24")
    assert " INFO " in lines[-1]
    assert [line[-7:] for line in buf.lines(2)] == ["line 23", "line 24"]
    assert buf.lines(0) == []


def test_level_filters(logger: logging.Logger) -> None:
    buf = LogBuffer(10, level=logging.WARNING)
    logger.addHandler(buf)
    try:
        logger.info("quiet")
        logger.warning("loud")
    finally:
        logger.removeHandler(buf)
    assert len(buf.lines()) == 1
    assert buf.lines()[0].endswith("loud")
