"""Which ActiveMQ versions `msgbus network status` warns about."""

from __future__ import annotations

import pytest

from msgbus.network.advisories import advisories_for


@pytest.mark.parametrize(
    ("server", "cves"),
    [
        ("ActiveMQ/5.17.2", ["CVE-2023-46604", "CVE-2022-41678"]),
        ("ActiveMQ/5.17.5", ["CVE-2023-46604"]),
        ("ActiveMQ/5.17.6", []),
        ("ActiveMQ/5.18.2", ["CVE-2023-46604"]),
        ("ActiveMQ/5.18.3", []),
        ("ActiveMQ/5.14.5", ["CVE-2023-46604", "CVE-2022-41678"]),
        ("ActiveMQ/6.1.0", []),
        ("RabbitMQ/3.12.1", []),
        ("msgbus/0.4.0", []),
    ],
)
def test_advisories_by_version(server: str, cves: list[str]) -> None:
    assert [a.cve for a in advisories_for(server)] == cves
