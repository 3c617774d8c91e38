"""The agent's spool: every heartbeat is numbered and written to disk before anything is sent.

A spool is one SQLite file per node (WAL journal, ``synchronous=FULL``: a committed heartbeat is on disk,
fsynced, and survives ``kill -9`` or a power cut). It holds the heartbeats not yet acknowledged, in
``seq`` order, and the node's sequence counter. The sender reads the oldest, posts them, and deletes
them only once the server has answered 2xx; so a heartbeat leaves the spool only when the server has it.

**Exactly once, and the crash window.** The server commits a batch, then answers; the agent deletes
the batch on the answer. If the agent dies (or the answer is lost) between the server's commit and the
delete, the agent resends the same heartbeats with the same ``seq`` after restarting. The server is
idempotent by ``(node, seq)`` and counts them as duplicates, so every heartbeat is stored exactly once.

**Sequence numbers** are strictly increasing per node and never reused: the counter is committed in the
same transaction as the heartbeat it numbers. A new spool starts its counter at the current Unix time in
microseconds, not at 1, so a node whose spool file was lost or deleted still numbers above everything
the server already holds (it would have to send a million heartbeats a second to catch up).

One agent per spool: the file is locked (``flock``) while open, and a second agent is refused. The spool
is bounded (``max_pending``, by default 100,000 heartbeats, ≈35 days at 30 s): beyond it the oldest are
dropped and counted, so a node cut off for months cannot fill its disk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from computelease.agent.errors import SpoolError
from computelease.telemetry.schemas import Heartbeat, HeartbeatBody

log = logging.getLogger("computelease.agent")

MEMORY = ":memory:"


def _first_seq() -> int:
    return time.time_ns() // 1000


class Spool:
    """The heartbeats of one node not yet acknowledged, oldest first; ``path=":memory:"`` keeps none."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        node: str,
        max_pending: int = 100_000,
        first_seq: int | None = None,
    ) -> None:
        if max_pending < 1:
            raise SpoolError("a spool must hold at least one heartbeat")
        self.path = str(path)
        self.node = node
        self.max_pending = max_pending
        self._lock: IO[bytes] | None = None
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._lock = self._take_lock(Path(self.path + ".lock"))
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            if self.path != MEMORY:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)"
            )
            with self._transaction():
                owner = self._meta("node")
                if owner is None:
                    self._set_meta("node", node)
                    self._set_meta("next_seq", str(first_seq if first_seq is not None else _first_seq()))
                    self._set_meta("dropped", "0")
                elif owner != node:
                    raise SpoolError(f"the spool {self.path} belongs to node {owner}, not {node}")
            # Kept in memory (one process per spool): counting rows at every append is a table scan.
            self._count = self._db.execute("SELECT count(*) FROM pending").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self.close()
            raise SpoolError(f"the spool {self.path} cannot be used ({exc})") from exc
        except SpoolError:
            self.close()
            raise

    @staticmethod
    def _take_lock(path: Path) -> IO[bytes]:
        handle = path.open("ab")
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, one agent per spool is then the operator's job
            return handle
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise SpoolError(f"another agent is using the spool {path.with_suffix('')}") from exc
        return handle

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def append(self, body: HeartbeatBody) -> Heartbeat:
        """Number the heartbeat and commit it to disk; returns it with its ``seq``."""
        with self._transaction():
            seq = int(self._meta("next_seq") or 1)
            fields: dict[str, Any] = {name: getattr(body, name) for name in HeartbeatBody.model_fields}
            # The body is already validated; the seq is ours.
            heartbeat = Heartbeat.model_construct(seq=seq, **fields)
            self._db.execute(
                "INSERT INTO pending (seq, body) VALUES (?, ?)", (seq, heartbeat.model_dump_json())
            )
            self._set_meta("next_seq", str(seq + 1))
            count = self._count + 1
            over = count - self.max_pending
            if over > 0:
                self._db.execute(
                    "DELETE FROM pending WHERE seq IN (SELECT seq FROM pending ORDER BY seq LIMIT ?)", (over,)
                )
                self._set_meta("dropped", str(self.dropped + over))
                count -= over
                log.warning("spool full (%d heartbeats): dropped the %d oldest", self.max_pending, over)
        self._count = count
        return heartbeat

    def pending(self, limit: int) -> list[Heartbeat]:
        """The oldest ``limit`` heartbeats not yet acknowledged, in ``seq`` order."""
        rows = self._db.execute("SELECT seq, body FROM pending ORDER BY seq LIMIT ?", (limit,)).fetchall()
        heartbeats = []
        for seq, body in rows:
            try:
                heartbeats.append(Heartbeat.model_validate_json(body))
            except ValueError as exc:
                # Written by this code and committed atomically, so only a foreign edit gets here; one
                # unreadable row must not block every heartbeat behind it.
                log.error("spool row %d is unreadable and is dropped: %s", seq, exc)
                self.ack([seq])
                return self.pending(limit)
        return heartbeats

    def pending_json(self, limit: int) -> list[tuple[int, str]]:
        """The oldest ``limit`` heartbeats as stored (JSON written by :meth:`append`), for sending as is."""
        return self._db.execute("SELECT seq, body FROM pending ORDER BY seq LIMIT ?", (limit,)).fetchall()

    def ack(self, seqs: Iterable[int]) -> int:
        """Forget heartbeats the server has answered for; returns how many were removed."""
        seqs = list(seqs)
        removed = 0
        with self._transaction():
            for start in range(0, len(seqs), 500):
                chunk = seqs[start : start + 500]
                marks = ",".join("?" * len(chunk))
                removed += self._db.execute(f"DELETE FROM pending WHERE seq IN ({marks})", chunk).rowcount  # noqa: S608
        self._count -= removed
        return removed

    def __len__(self) -> int:
        return self._count

    @property
    def next_seq(self) -> int:
        return int(self._meta("next_seq") or 1)

    @property
    def dropped(self) -> int:
        """Heartbeats dropped because the spool was full."""
        return int(self._meta("dropped") or 0)

    def stats(self) -> dict[str, int | str]:
        return {"path": self.path, "pending": len(self), "next_seq": self.next_seq, "dropped": self.dropped}

    def close(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None  # type: ignore[assignment]
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
