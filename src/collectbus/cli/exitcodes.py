"""The exit codes of ``collectbus``, one meaning each (README, "Exit codes").

Scripts test them as they test ``sacct``'s or ``rsync``'s: ``0`` all done;
``1`` the work failed (nothing collected or stored, a database or daemon
error); ``2`` bad usage or configuration; ``3`` no daemon is running
(``daemon status|stop``, as LSB init scripts say it); ``4`` partly done: some
collections failed and the rest were stored and shown; ``127`` ``record``
could not start its command; ``130`` interrupted (Ctrl-C). ``record`` passes
its command's own code through.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_PARTIAL = 4
EXIT_NOT_STARTED = 127
EXIT_INTERRUPTED = 130
