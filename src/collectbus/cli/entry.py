"""The ``collectbus`` console script: Ctrl-C at any moment exits 130 without a traceback.

Importing the command line takes a moment; an interrupt then arrives before
:func:`collectbus.cli.main.main` can catch it, so this function, which imports
nothing until it runs, wraps the whole of it.
"""

from __future__ import annotations

import sys

from collectbus.cli.exitcodes import EXIT_INTERRUPTED  # constants alone: nothing to wait for


def main() -> None:
    """Run ``collectbus``; an interrupt, even during start-up, is one line and exit 130."""
    try:
        from collectbus.cli.main import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("collectbus: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
