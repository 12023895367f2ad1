"""The embedded state store: one SQLite file under the data folder, owned by one gateway.

WAL mode lets ``tollhouse budget`` read while the gateway writes. Atomicity: a process-wide lock
plus ``BEGIN IMMEDIATE`` (SQLite's write lock), so the check and the reservation are one step.
Commits use ``synchronous=NORMAL``: a committed reservation or spend survives a crash of the
gateway process (not necessarily a power cut).

One gateway owns the file: opening it for writing takes an exclusive lock on ``<file>.lock`` (held
until :meth:`SqliteStore.close` or the process ends, crash included) and drops the holds of the
previous owner, which is gone. A second gateway on the same ``--data`` is refused with a clear
error instead of wiping the first one's holds; gateways share budgets through Redis.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tollhouse.budget.store import Admission, Charge, State, StateError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_state (
    key TEXT NOT NULL, period TEXT NOT NULL, rule TEXT NOT NULL,
    spent INTEGER NOT NULL DEFAULT 0, warned INTEGER NOT NULL DEFAULT 0,
    keep_until REAL NOT NULL, PRIMARY KEY (key, period));
CREATE TABLE IF NOT EXISTS budget_holds (
    id TEXT NOT NULL, key TEXT NOT NULL, period TEXT NOT NULL,
    amount INTEGER NOT NULL, expires REAL NOT NULL, PRIMARY KEY (key, period, id));
"""


class SqliteStore:
    """Spend and reservations in ``path`` (created on first use unless ``read_only``)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path, self.read_only = path, read_only
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        self._owner: IO[str] | None = None
        if read_only:
            if path.exists():
                self._con = sqlite3.connect(
                    f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=5
                )
            return
        self._owner = _own(path)
        try:
            con = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.executescript(_SCHEMA)
            # Holds belong to the process that made them; that process is gone. Spend stays.
            con.execute("DELETE FROM budget_holds")
        except sqlite3.Error as exc:
            self._owner.close()
            raise StateError(f"cannot open the budget store {path}: {exc}") from exc
        self._con = con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        assert self._con is not None and not self.read_only, "store opened read-only"
        with self._lock:
            con = self._con
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def reserve(
        self, hold_id: str, charges: Sequence[Charge], now: float, expires: float
    ) -> Admission:
        with self._write() as con:
            con.execute("DELETE FROM budget_holds WHERE expires <= ?", (now,))
            used: list[int] = []
            for i, charge in enumerate(charges):
                spent, reserved = self._totals(con, charge.key, charge.period, now)
                committed = spent + reserved
                if committed >= charge.limit or committed + charge.amount > charge.limit:
                    return Admission(False, failed=i, spent=spent, reserved=reserved)
                used.append(committed + charge.amount)
            first_warn: list[bool] = []
            for charge, committed in zip(charges, used, strict=True):
                con.execute(
                    "INSERT INTO budget_state (key, period, rule, keep_until) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (key, period) DO UPDATE SET rule = excluded.rule",
                    (charge.key, charge.period, charge.rule, charge.keep_until),
                )
                con.execute(
                    "INSERT INTO budget_holds VALUES (?, ?, ?, ?, ?)",
                    (hold_id, charge.key, charge.period, charge.amount, expires),
                )
                crossed = committed >= charge.warn and (
                    con.execute(
                        "UPDATE budget_state SET warned = 1 "
                        "WHERE key = ? AND period = ? AND warned = 0",
                        (charge.key, charge.period),
                    ).rowcount
                    == 1
                )
                first_warn.append(crossed)
            return Admission(True, used=tuple(used), first_warn=tuple(first_warn))

    def settle(self, hold_id: str, charges: Sequence[Charge], actual: Sequence[int]) -> None:
        with self._write() as con:
            for charge, units in zip(charges, actual, strict=True):
                con.execute(
                    "DELETE FROM budget_holds WHERE key = ? AND period = ? AND id = ?",
                    (charge.key, charge.period, hold_id),
                )
                if units:
                    con.execute(
                        "INSERT INTO budget_state (key, period, rule, spent, keep_until) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key, period) "
                        "DO UPDATE SET spent = spent + excluded.spent",
                        (charge.key, charge.period, charge.rule, units, charge.keep_until),
                    )

    def states(self, now: float) -> list[State]:
        if self._con is None:
            return []
        with self._lock:
            try:
                rows = self._con.execute(
                    "SELECT s.key, s.period, s.rule, s.spent, "
                    "(SELECT coalesce(sum(h.amount), 0) FROM budget_holds h "
                    " WHERE h.key = s.key AND h.period = s.period AND h.expires > ?) "
                    "FROM budget_state s ORDER BY s.key, s.period",
                    (now,),
                ).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise StateError(f"cannot read the budget store {self.path}: {exc}") from exc
        return [State(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
            if self._owner is not None:
                self._owner.close()  # releases the lock
                self._owner = None

    @staticmethod
    def _totals(con: sqlite3.Connection, key: str, period: str, now: float) -> tuple[int, int]:
        row = con.execute(
            "SELECT coalesce((SELECT spent FROM budget_state WHERE key = ? AND period = ?), 0), "
            "coalesce((SELECT sum(amount) FROM budget_holds "
            "WHERE key = ? AND period = ? AND expires > ?), 0)",
            (key, period, key, period, now),
        ).fetchone()
        return int(row[0]), int(row[1])


def _own(path: Path) -> IO[str]:
    """Lock ``<path>.lock`` for this process, or raise StateError naming who holds it."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        owner = os.fdopen(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600), "r+")
    except OSError as exc:
        raise StateError(f"cannot open the budget store {path}: {exc}") from exc
    try:
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = owner.read().strip() or "unknown"
        owner.close()
        raise StateError(
            f"another gateway (pid {holder}) uses the budget store {path}: run one gateway per "
            "--data folder, or share budgets between gateways with --state redis://host:port/db"
        ) from None
    owner.seek(0)
    owner.truncate()
    owner.write(f"{os.getpid()}\n")
    owner.flush()
    return owner
