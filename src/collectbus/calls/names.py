"""Handler names as smartswitch users write them: ``process`` for ``api.process``.

A recorded handler is named ``<switcher>.<handler>`` by the smartswitch plugin
(or whatever name was given). A query may give the full name, or any tail of
it that starts after a dot: ``process`` and ``api.process`` both find
``api.process``. A full name always wins; a tail that more than one handler
ends with is an error that names them, never an empty answer.
"""

from __future__ import annotations

from collections.abc import Iterable


def find_handler(name: str, known: Iterable[str]) -> str | None:
    """The handler ``name`` means among ``known``, or None when none matches.

    Raises ValueError when ``name`` is the tail of several handlers' names.
    """
    names = list(known)
    if name in names:
        return name
    tail = "." + name
    matches = sorted(n for n in names if n.endswith(tail))
    if len(matches) > 1:
        raise ValueError(
            f"handler {name!r} is ambiguous: it could be {', '.join(matches)}; give the full name"
        )
    return matches[0] if matches else None
