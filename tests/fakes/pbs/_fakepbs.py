"""The shared body of the fake ``qstat``, ``pbsnodes`` and ``pbs_rstat`` (test
doubles of PBS's clients).

They replay recorded ``-F json`` output from a scenario directory, named by
the environment variable ``FAKE_PBS_DIR``. When that directory holds a file
``current``, its content names the subdirectory to replay (one step of a
scenario); otherwise the directory itself is replayed.

For each kind of listing the directory may hold:

- ``<kind>.json``: what to print on stdout (``<kind>`` is ``jobs``,
  ``jobs_history``, ``queues``, ``server`` or ``nodes``); for ``pbs_rstat``,
  whose output is text, ``reservations.txt``;
- ``<kind>.stderr``: what to print on stderr;
- ``<kind>.rc``: the exit status (default 0);
- ``<kind>.hang``: when present, sleep instead of answering (a hung server).

The flags are honoured as PBS's clients read them: ``-F json`` is required
(anything else exits 2 with a usage line, as qstat does); ``-x`` selects
``jobs_history``; ``-Q`` queues; ``-B`` the server. A server named on the
command line (``@S``, ``-B S``, ``pbsnodes -s S``) must be the one in the
file ``server_name`` when there is one, else the fake exits 255 with
qstat's "cannot connect to server" message. ``pbs_rstat`` takes ``-f``
only (anything else exits 1 with its usage line) and its server from
``PBS_SERVER`` in the environment, as PBS's clients do. Every call is appended to
``calls.log`` in the directory, one argv per line.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path


def _usage(program: str) -> int:
    sys.stderr.write(f"usage: {program} [-f] [-x] [-Q|-B] -F json [destination]\n")
    return 2


def _kind(program: str, args: list[str]) -> tuple[str | None, str | None]:
    """The listing asked for and the server named, or (None, None) for bad flags."""
    if "-F" not in args or args[args.index("-F") + 1 : args.index("-F") + 2] != ["json"]:
        return None, None
    rest = [a for i, a in enumerate(args) if a != "-F" and (i == 0 or args[i - 1] != "-F")]
    if program == "pbsnodes":
        server = rest[rest.index("-s") + 1] if "-s" in rest else None
        return ("nodes" if "-a" in rest else None), server
    operands = [a for a in rest if not a.startswith("-")]
    if "-B" in rest:
        return "server", (operands[0] if operands else None)
    server = next((a[1:] for a in operands if a.startswith("@")), None)
    if "-Q" in rest:
        return "queues", server
    if "-f" not in rest:
        return None, None
    return ("jobs_history" if "-x" in rest else "jobs"), server


def _rstat(args: list[str]) -> tuple[str | None, str | None]:
    if args != ["-f"]:
        sys.stderr.write("Usage:\n\tpbs_rstat [-fFBS] [reservation-id]\n")
        return None, None
    return "reservations", os.environ.get("PBS_SERVER")


def main(program: str) -> int:
    base = Path(os.environ["FAKE_PBS_DIR"])
    with (base / "calls.log").open("a") as log:
        log.write(shlex.join([program, *sys.argv[1:]]) + "\n")
    step = base / "current"
    folder = base / step.read_text().strip() if step.is_file() else base
    if program == "pbs_rstat":
        kind, server = _rstat(sys.argv[1:])
        if kind is None:
            return 1
    else:
        kind, server = _kind(program, sys.argv[1:])
        if kind is None:
            return _usage(program)
    expected = folder / "server_name"
    if server and expected.is_file() and server != expected.read_text().strip():
        sys.stderr.write(f"{program}: cannot connect to server {server} (errno=15010)\n")
        return 255
    if (folder / f"{kind}.hang").exists():
        time.sleep(3600)
    out = folder / (f"{kind}.txt" if program == "pbs_rstat" else f"{kind}.json")
    if out.is_file():
        sys.stdout.buffer.write(out.read_bytes())
        sys.stdout.flush()
    err = folder / f"{kind}.stderr"
    if err.is_file():
        sys.stderr.buffer.write(err.read_bytes())
    rc = folder / f"{kind}.rc"
    return int(rc.read_text()) if rc.is_file() else 0
