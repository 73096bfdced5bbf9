"""A writer for the crash test: inserts calls, and edits and deletes some, for a while.

python writer.py DB_URL SECONDS SEED
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from sqlalchemy import text

from collectbus.store.store import make_engine


def main() -> None:
    url, stop_file, seed = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    engine = make_engine(url)
    deadline = time.monotonic() + 120
    handlers = ("get", "put", "del", "list")
    while time.monotonic() < deadline and not stop_file.exists():
        with engine.begin() as conn:
            rows = [
                {
                    "h": rng.choice(handlers),
                    "e": rng.randrange(1, 10**7),
                    "err": rng.choice([None, None, None, "ValueError"]),
                }
                for _ in range(rng.randrange(1, 30))
            ]
            conn.execute(
                text(
                    "INSERT INTO calls (host, pid, thread_id, handler, qualname, started_ns,"
                    " elapsed_ns, error_type) VALUES ('h', 1, 1, :h, 'q', 0, :e, :err)"
                ),
                rows,
            )
            top = conn.execute(text("SELECT max(id) FROM calls")).scalar() or 0
            for _ in range(rng.randrange(0, 4)):
                conn.execute(
                    text("UPDATE calls SET elapsed_ns = :e, handler = :h WHERE id = :id"),
                    {
                        "e": rng.randrange(1, 10**7),
                        "h": rng.choice(handlers),
                        "id": rng.randint(1, top),
                    },
                )
            if rng.random() < 0.3:
                conn.execute(text("DELETE FROM calls WHERE id = :id"), {"id": rng.randint(1, top)})
        time.sleep(rng.random() * 0.01)
    engine.dispose()


if __name__ == "__main__":
    main()
