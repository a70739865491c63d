"""``python -m msgbus``: the same as the ``msgbus`` command."""

from msgbus.cli.main import main

main()
