"""Host lists for ``collectbus record --hosts``: ``a,b,c`` or ``@FILE``."""

from __future__ import annotations

from pathlib import Path

from collectbus.errors import RecordError

__all__ = ["parse_hosts"]


def parse_hosts(value: str) -> list[str]:
    """Host names from ``a,b`` or from ``@FILE`` (one or more per line, ``#`` comments).

    Duplicates are dropped, the first occurrence kept. An empty list, a name
    with a space, or an unreadable file is a RecordError naming the source.
    """
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise RecordError(f"{path}: cannot read the host list: {err.strerror or err}") from err
        names: list[str] = []
        for number, line in enumerate(text.splitlines(), 1):
            content = line.partition("#")[0].replace(",", " ")
            for name in content.split():
                if name.startswith("@"):
                    raise RecordError(f"{path}:{number}: a host list cannot include another")
                names.append(name)
        source = str(path)
    else:
        names = [n.strip() for n in value.split(",")]
        if any(not n for n in names):
            raise RecordError(f"--hosts {value!r}: an empty host name", hint="e.g. --hosts a,b,c")
        if any(any(c.isspace() for c in n) for n in names):
            raise RecordError(f"--hosts {value!r}: a host name with a space")
        source = "--hosts"
    if not names:
        raise RecordError(f"{source}: no host names")
    return list(dict.fromkeys(names))
