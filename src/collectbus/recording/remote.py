"""The loop that runs on a remote host, and the framing of its answers.

The remote end reads one request line (a sequence number, or ``q`` to end)
on stdin and answers with the six /proc files of a host sample and
``sys/kernel/hostname`` (the machine's own name), each preceded by a marker
line, then an end line::

    \\n<token> stat\\n<bytes of /proc/stat>\\n<token> meminfo\\n<bytes> ... \\n<token> done <seq>\\n

The token is random per session, so no /proc content can be taken for a
marker. The bytes are the files' own: parsing happens here, by the same pure
parsers as the local collector's. A file that cannot be read is sent empty
(and its error goes to stderr).

Two implementations of the same loop, chosen on the remote host:

- ``python3``, when the host has it: the files stay open and are re-read
  with ``pread``, so a sample costs no process at all;
- POSIX ``sh`` otherwise: one ``cat`` per sample reads all six files and the
  markers, which the loop writes once into small files of a temporary folder.
"""

from __future__ import annotations

import shlex

from collectbus.collectors.host.collector import SOURCES
from collectbus.errors import ParseError

__all__ = ["FILES", "HOSTNAME_FILE", "remote_command", "remote_script", "split_frames"]

#: The machine's name, under the procfs root (what ``hostname`` prints).
HOSTNAME_FILE = "sys/kernel/hostname"
#: Every file of one answer, relative to the procfs root.
FILES = (*SOURCES, HOSTNAME_FILE)

# Python 3.5 and later (no f-strings): argv is the token and the procfs root.
_PYTHON_LOOP = r"""
import os, sys
token, root = sys.argv[1].encode(), sys.argv[2]
names = %(names)r
quiet = %(quiet)r
fds = {}
out = sys.stdout.buffer
def read(name):
    fd = fds.get(name)
    if fd is None:
        fd = fds[name] = os.open(os.path.join(root, name), os.O_RDONLY)
    chunks, offset = [], 0
    while True:
        chunk = os.pread(fd, 65536, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)
out.write(token + b" ready\n")
out.flush()
for line in sys.stdin.buffer:
    seq = line.strip()
    if seq == b"q":
        break
    parts = []
    for name in names:
        parts.append(b"\n" + token + b" " + name.encode() + b"\n")
        try:
            parts.append(read(name))
        except OSError as err:
            fds.pop(name, None)
            if name not in quiet:
                sys.stderr.write("%%s/%%s: %%s\n" %% (root, name, err.strerror))
                sys.stderr.flush()
    parts.append(b"\n" + token + b" done " + seq + b"\n")
    out.write(b"".join(parts))
    out.flush()
"""


def remote_script(token: str, proc_root: str = "/proc") -> str:
    """The POSIX sh loop (see the module docstring)."""
    lines = [
        f"t={token}",
        'd=$(mktemp -d) || { echo "$t cannot create a temporary folder" >&2; exit 1; }',
        "trap 'rm -rf \"$d\"' EXIT",
        "trap 'exit 1' HUP INT TERM PIPE",
    ]
    cat_args = []
    for i, source in enumerate(FILES):
        lines.append(f'printf \'\\n%s %s\\n\' "$t" {shlex.quote(source)} >"$d/{i}"')
        cat_args += [f'"$d/{i}"', shlex.quote(f"{proc_root}/{source}")]
    # The host name is optional (a procfs tree without it): its cat says nothing.
    name_args = cat_args[-2:]
    lines += [
        "printf '%s ready\\n' \"$t\"",
        "while read -r n; do",
        '  [ "$n" = q ] && exit 0',
        f"  cat {' '.join(cat_args[:-2])}",
        f"  cat {' '.join(name_args)} 2>/dev/null",
        '  printf \'\\n%s done %s\\n\' "$t" "$n"',
        "done",
    ]
    return "\n".join(lines) + "\n"


def remote_command(token: str, proc_root: str = "/proc", *, python: bool = True) -> str:
    """The command line given to ssh: the python3 loop where there is python3, else sh."""
    script = remote_script(token, proc_root)
    if python:
        loop = _PYTHON_LOOP % {"names": list(FILES), "quiet": [HOSTNAME_FILE]}
        script = (
            "command -v python3 >/dev/null 2>&1 && exec python3 -c "
            f"{shlex.quote(loop)} {token} {shlex.quote(proc_root)}\n" + script
        )
    return "exec sh -c " + shlex.quote(script)


def split_frames(data: bytes, token: str, source: str) -> dict[str, bytes]:
    """The files of one answer: ``{file: bytes}``; ParseError if the framing is wrong."""
    marker = b"\n" + token.encode() + b" "
    parts = data.split(marker)
    if parts[0]:
        raise ParseError(source, 1, "output before the first file marker")
    frames: dict[str, bytes] = {}
    for part in parts[1:]:
        name, newline, content = part.partition(b"\n")
        if not newline:
            raise ParseError(source, None, f"a file marker without its line end: {name[:40]!r}")
        frames[name.decode("utf-8", "backslashreplace")] = content
    return frames
