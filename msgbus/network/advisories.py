"""Known remote-code-execution advisories of ActiveMQ 5.x, checked against the version a
running broker reports (its STOMP ``server`` header, e.g. ``ActiveMQ/5.17.2``).

Kept small and sourced: only advisories that let a remote attacker run code, from the
project's own announcements. A distribution package may carry a fix as a backport
under an older version number (Debian's 5.17.2+dfsg-2+deb12u1 does for CVE-2023-46604),
so a warning names what to check, not a verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ADVISORIES", "Advisory", "advisories_for"]

Version = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Advisory:
    cve: str
    what: str
    fixed: tuple[Version, ...]
    """The first fixed release of each maintained branch; older branches are affected,
    branches after the last listed are not."""
    source: str

    def affects(self, version: Version) -> bool:
        branch = version[:2]
        for fixed in self.fixed:
            if fixed[:2] == branch:
                return version < fixed
        return branch < self.fixed[0][:2]


ADVISORIES = (
    Advisory(
        "CVE-2023-46604",
        "remote code execution by any client reaching the OpenWire port",
        ((5, 15, 16), (5, 16, 7), (5, 17, 6), (5, 18, 3)),
        "https://activemq.apache.org/security-advisories.data/CVE-2023-46604-announcement.txt",
    ),
    Advisory(
        "CVE-2022-41678",
        "remote code execution through the web console's Jolokia API",
        ((5, 16, 6), (5, 17, 4)),
        "https://activemq.apache.org/security-advisories.data/CVE-2022-41678-announcement.txt",
    ),
)

_SERVER = re.compile(r"ActiveMQ/(\d+)\.(\d+)\.(\d+)")


def advisories_for(server: str) -> list[Advisory]:
    """The advisories that apply to a broker whose ``server`` header is ``server``
    (none for other brokers or versions that cannot be read)."""
    match = _SERVER.search(server)
    if match is None:
        return []
    version = tuple(int(g) for g in match.groups())
    return [a for a in ADVISORIES if a.affects(version)]
