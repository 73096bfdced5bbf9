"""Database URLs as they may be shown: in logs, errors and status output."""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``; safe for any text."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Not a URL SQLAlchemy can read: still hide what looks like a password.
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)
