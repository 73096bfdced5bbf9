"""``python -m collectbus``: the same as the ``collectbus`` command."""

from collectbus.cli.main import main

main()
