"""``python -m collectbus``: the same as the ``collectbus`` command."""

from collectbus.cli.entry import main

main()
