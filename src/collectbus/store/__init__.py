"""The store: host samples and collection events in SQLite or PostgreSQL.

``collectbus.store.open(url)`` returns a :class:`Store`; the URL alone decides
the database. See :mod:`collectbus.store.store`.

The names below are loaded on first use, so that a light module of the
package (``collectbus.store.deadline``, say) can be imported without
SQLAlchemy, Alembic and numpy: the CLI's start-up depends on it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from collectbus.urls import mask_url

if TYPE_CHECKING:
    from collectbus.store.compact import CompactStats
    from collectbus.store.store import DEFAULT_URL, Store, open

__all__ = ["DEFAULT_URL", "CompactStats", "Store", "mask_url", "open"]

_LAZY = {
    "CompactStats": "collectbus.store.compact",
    "DEFAULT_URL": "collectbus.store.store",
    "Store": "collectbus.store.store",
    "open": "collectbus.store.store",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
