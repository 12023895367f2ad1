"""The audit writer: the request path hands it rows; one background thread batches them into DuckDB.

Why the database is opened per batch: DuckDB lets one process hold a file for writing, and while it
does no other process can open it at all, not even read-only. Holding the file only for the ~50 ms
of a batch lets an analyst's ``tollhouse audit`` (which retries its read-only open) get in between.
The other side of that coin: while an analyst's query holds the file, the writer cannot open it; the
batch then goes to the spool (``audit-spool.jsonl``) and is ingested at the next successful open.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from tollhouse.audit import store
from tollhouse.audit.schema import TABLES
from tollhouse.audit.spool import SPOOL_NAME, Entry, Spool, reject

log = logging.getLogger("tollhouse.audit")


@dataclass(frozen=True)
class WriterStats:
    """A snapshot for health checks. Counts are rows since :meth:`AuditWriter.start`."""

    alive: bool = False
    rows_written: int = 0  # inserted into the database (including rows ingested from the spool)
    rows_spooled: int = 0  # sent to the spool because the database could not be written
    rows_rejected: int = 0  # refused by the database (bad values): kept in audit-rejected.jsonl
    batches: int = 0  # successful database writes
    spool_pending: int = 0  # rows waiting in the spool right now
    spool_bytes: int = 0  # size of the spool file right now
    last_batch_ms: float | None = None  # open + insert + close of the last successful write
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass
class _Flush:
    done: threading.Event


_STOP = object()
_EPISODE_LOG_INTERVAL = 60.0  # seconds between spooling warnings
SPOOL_WARN_BYTES = 256 * 1024 * 1024  # warn as the spool passes this size, then at each doubling


class AuditWriter:
    """Appends audit rows to ``data_dir/audit.duckdb`` from one background thread.

    ``submit`` never blocks and never raises; call :meth:`start` once, and :meth:`close` at
    shutdown (also registered with ``atexit``) so that rows still in memory are written. A row is
    durable once it is in the database or fsynced into the spool; :meth:`flush` waits for that.
    Rows in memory are lost only if the process is killed before a flush (at most ``batch_size``
    rows or ``flush_interval`` seconds' worth).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        spool_retry: float = 1.0,
        lock_wait: float = 0.25,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.db_path = self.data_dir / store.DB_NAME
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.spool_retry = spool_retry  # how often to retry draining the spool when idle
        # An analyst's query usually holds the file for a few ms: waiting a moment for it
        # beats spooling (and re-reading) the batch.
        self.lock_wait = lock_wait
        self.spool = Spool(self.data_dir / SPOOL_NAME)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()  # set when the thread is gone (closed or died)
        self._lock = threading.Lock()  # guards _stats and the dead-writer spool path
        self._stats = WriterStats()
        self._spooling = False
        self._episode_level = logging.INFO
        self._last_episode_log = -_EPISODE_LOG_INTERVAL
        self._unknown_columns: set[tuple[str, str]] = set()
        self._spool_warned = 0  # the spool size last warned about

    # ---- request path -------------------------------------------------------------------------

    def submit(self, table: str, row: Mapping[str, Any]) -> None:
        """Queue one row for ``table`` (one of ``schema.TABLES``). Never blocks, never raises.

        The row is copied; an ``id`` is generated if it has none. Unknown tables are logged and
        dropped; unknown keys are logged once and ignored. If the writer thread has stopped (or
        died), the row is appended to the spool directly: slower, but nothing is lost.
        """
        try:
            if table not in TABLES:
                log.error("audit: row for unknown table %r dropped", table)
                self._count(rows_rejected=1)
                return
            data = dict(row)
            if not data.get("id"):
                data["id"] = store.new_row_id()
            self._queue.put((table, data))
            if self._stopped.is_set():
                self._spool_queue()
        except Exception:  # the request path must not fail because of the audit log
            log.exception("audit: could not queue a %s row", table)

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread. Rows left in the spool by an earlier run are ingested first."""
        if self._thread is not None:
            return
        private_data_dir(self.data_dir)
        with self._lock:
            self._stats = replace(
                self._stats,
                alive=True,
                spool_pending=self.spool.count(),
                spool_bytes=self.spool.size(),
            )
        self._thread = threading.Thread(target=self._run, name="tollhouse-audit", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row submitted before this call is in the database or the spool.

        Returns False if that did not happen within ``timeout`` seconds, or if the writer was never
        started. After :meth:`close` (or if the thread died) queued rows are spooled here.
        """
        if self._stopped.is_set():
            self._spool_queue()
            return True
        if self._thread is None:
            return False
        done = threading.Event()
        self._queue.put(_Flush(done))
        return done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything still queued, then stop the thread. Safe to call more than once.

        Rows submitted after close go straight to the spool and are ingested by the next writer.
        """
        atexit.unregister(self.close)
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
        self._stopped.set()
        self._spool_queue()  # rows that raced with the stop, or a writer that was never started

    @property
    def stats(self) -> WriterStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive()
            return replace(self._stats, alive=alive)

    # ---- writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        pending: list[Entry] = []
        waiters: list[threading.Event] = []
        deadline: float | None = None
        next_spool_try = 0.0
        stop = False
        try:
            while not stop:
                timeout = self.spool_retry if deadline is None else deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=max(timeout, 0.0))
                except queue.Empty:
                    item = None
                # Take whatever else is already queued, up to a batch (FIFO: a flush marker
                # arrives after every row submitted before it).
                while item is not None:
                    if item is _STOP:
                        stop = True
                    elif isinstance(item, _Flush):
                        waiters.append(item.done)
                    else:
                        pending.append(item)
                        if deadline is None:
                            deadline = time.monotonic() + self.flush_interval
                    if stop or len(pending) >= self.batch_size:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        item = None
                now = time.monotonic()
                due = deadline is not None and now >= deadline
                if pending and (due or stop or waiters or len(pending) >= self.batch_size):
                    while pending:
                        self._write(pending[: self.batch_size])
                        del pending[: self.batch_size]
                    deadline = None
                    next_spool_try = now + self.spool_retry
                elif self._stats.spool_pending and (now >= next_spool_try or waiters or stop):
                    self._write([])  # nothing new, but the database may be back: drain
                    next_spool_try = now + self.spool_retry
                for done in waiters:
                    done.set()
                waiters.clear()
        except Exception:  # a bug here must not lose rows: spool them, then let flush() know
            log.exception("audit writer thread died; rows go to the spool from now on")
            self._stopped.set()
            self._spool(pending, "writer thread died")
            for done in waiters:
                done.set()
        finally:
            self._stopped.set()
            self._spool_queue()

    def _write(self, batch: list[Entry]) -> None:
        """Write one batch, then drain the spool; on failure spool the batch. Never raises.

        The batch goes in first: if the spool is long and the gateway stops while draining it,
        the batch is already in the database and the rest of the spool is still on disk."""
        started = time.perf_counter()
        con: duckdb.DuckDBPyConnection | None = None
        try:
            con = store.connect(self.db_path, lock_wait=self.lock_wait)
            self._insert(con, batch, replay=False)
        except Exception as exc:
            if con is not None:
                con.close()
            self._spool(batch, _describe_safely(exc))
            return
        if batch:
            self._count(batches=1)
            self._set(last_batch_ms=(time.perf_counter() - started) * 1000.0)
        try:
            drained = self.spool.drain(
                lambda entries: self._insert(con, entries, replay=True), chunk=self.batch_size
            )
        except Exception as exc:  # the batch is in; the spool stays on disk for the next try
            log.warning("audit spool not drained yet: %s", _describe_safely(exc))
            return
        finally:
            try:
                con.close()
            except Exception:  # committed already: the rows are in the WAL
                log.exception("audit: closing the database failed")
        self._set(spool_pending=0, spool_bytes=0, last_success_at=datetime.now(UTC))
        self._spool_warned = 0
        if drained or self._spooling:
            log.log(
                self._episode_level,
                "audit spool drained: %d row(s) ingested into %s",
                drained,
                self.db_path,
            )
        self._spooling = False

    def _insert(
        self, con: duckdb.DuckDBPyConnection, entries: list[Entry], *, replay: bool
    ) -> None:
        """Insert in one transaction; if the rows (not the database) are at fault, isolate them.

        ``replay`` (spool rows) skips ids already present, so a replay after a crash between the
        commit and the spool truncate adds nothing twice.
        """
        by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for table, row in entries:
            if table in TABLES:
                self._warn_unknown_columns(table, row)
                by_table[table].append(row)
            else:
                reject(self.data_dir, [(table, row, f"unknown table {table!r}")])
                self._count(rows_rejected=1)
        if not by_table:
            return
        add = store.insert_new if replay else store.insert
        try:
            con.execute("BEGIN TRANSACTION")
            for table, rows in by_table.items():
                add(con, table, rows)
            con.execute("COMMIT")
            self._count(rows_written=sum(len(rows) for rows in by_table.values()))
            return
        except store.UNAVAILABLE:
            raise
        except Exception as exc:
            _rollback(con)
            # The type only: DuckDB's message quotes the value it could not convert.
            log.warning("audit: a batch was refused (%s); retrying row by row", type(exc).__name__)
        # One row per transaction: good rows go in, each bad one is kept aside with its error.
        bad: list[tuple[str, dict[str, Any], str]] = []
        for table, rows in by_table.items():
            for row in rows:
                error = self._insert_one(con, add, table, row)
                if error is not None:
                    bad.append((table, row, error))
        self._count(rows_rejected=reject(self.data_dir, bad))

    def _insert_one(
        self, con: duckdb.DuckDBPyConnection, add: Any, table: str, row: dict[str, Any]
    ) -> str | None:
        """Insert one row (autocommit); None if it went in, else why not (for the rejected file).

        Text that is not valid UTF-8 is the one fault repaired here rather than refused: the row
        goes in with U+FFFD in its place, so bytes a client or upstream chose cannot keep an
        exchange out of the log.
        """
        try:
            add(con, table, [row])
        except store.UNAVAILABLE:
            raise
        except Exception as exc:
            scrubbed = store.scrub_text(row)
            if scrubbed is None:
                return _describe(exc)
            try:
                add(con, table, [scrubbed])
            except store.UNAVAILABLE:
                raise
            except Exception as again:
                return _describe(again)
            log.warning(
                "audit: a %s row had text that is not valid UTF-8; stored with U+FFFD in its place",
                table,
            )
        self._count(rows_written=1)
        return None

    def _spool(self, batch: list[Entry], error: str) -> None:
        """Keep a batch in the spool file; log when spooling starts (not for every batch)."""
        now = datetime.now(UTC)
        self._set(last_error=error, last_error_at=now)
        if not self._spooling:
            self._spooling = True
            # An analyst querying in a loop starts many short episodes: log the first one, and
            # then at most one a minute at WARNING; the rest at DEBUG (stats keep the counts).
            quiet = time.monotonic() - self._last_episode_log < _EPISODE_LOG_INTERVAL
            self._episode_level = logging.DEBUG if quiet else logging.INFO
            if not quiet:
                self._last_episode_log = time.monotonic()
            log.log(
                logging.DEBUG if quiet else logging.WARNING,
                "audit database %s cannot be written (%s); spooling rows to %s until it can",
                self.db_path,
                error,
                self.spool.path,
            )
        if not batch:
            return
        try:
            n = self.spool.append(batch)
            self._count(rows_spooled=n, spool_pending=n)
        except Exception as exc:
            log.error(
                "audit: %d row(s) lost: neither the database nor the spool (%s)",
                len(batch),
                _describe_safely(exc),
            )
            return
        self._watch_spool_size()

    def _watch_spool_size(self) -> None:
        """The spool is never cut (no row is dropped): say so loudly as it grows instead."""
        size = self.spool.size()
        self._set(spool_bytes=size)
        threshold = max(SPOOL_WARN_BYTES, self._spool_warned * 2)
        if size < threshold:
            return
        self._spool_warned = size
        since = self._stats.last_success_at
        log.warning(
            "audit spool %s holds %s (%d row(s)) because %s cannot be written%s; nothing is "
            "dropped: free the database (a long query?) or the disk before the spool fills it",
            self.spool.path,
            _size(size),
            self._stats.spool_pending,
            self.db_path,
            f" since {since:%Y-%m-%d %H:%M:%S} UTC" if since else "",
        )

    def _spool_queue(self) -> None:
        """Move whatever is queued straight to the spool (writer stopped or dead)."""
        with self._lock:  # serialize callers; the spool's flock guards the file itself
            entries: list[Entry] = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Flush):
                    item.done.set()
                elif item is not _STOP:
                    entries.append(item)
        if entries:
            self._spool(entries, "writer not running")

    def _warn_unknown_columns(self, table: str, row: dict[str, Any]) -> None:
        columns = TABLES[table]
        for key in row:
            if key not in columns and (table, key) not in self._unknown_columns:
                self._unknown_columns.add((table, key))
                log.warning("audit: %s has no column %r; the value is not stored", table, key)

    def _count(self, **deltas: int) -> None:
        """Add to counters."""
        with self._lock:
            updates = {k: getattr(self._stats, k) + v for k, v in deltas.items()}
            self._stats = replace(self._stats, **updates)

    def _set(self, **values: Any) -> None:
        with self._lock:
            self._stats = replace(self._stats, **values)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # no transaction left to roll back
        con.execute("ROLLBACK")


def _describe(exc: BaseException) -> str:
    """The error in full, for the rejected-rows file (private: it holds the row anyway)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _describe_safely(exc: BaseException) -> str:
    """The error for logs and stats: the message only when it is about the database (locked,
    corrupt, disk), never a conversion error, whose message quotes a row's value."""
    if isinstance(exc, store.UNAVAILABLE) and not isinstance(exc, UnicodeError):
        return _describe(exc)
    return type(exc).__name__


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    amount = n / 1024
    for unit in ("KiB", "MiB"):
        if amount < 1024:
            return f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def private_data_dir(data_dir: Path) -> None:
    """Create ``data_dir`` readable by its owner only: the audit log holds prompts and answers.
    An existing folder that others can read is left as the operator made it, with a warning.

    The audit files themselves are made 0600 wherever they are, except DuckDB's WAL
    (``audit.duckdb.wal``), which duckdb creates with the process umask for the moment of each
    batch: only a private folder keeps that from other local users."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = data_dir.stat().st_mode & 0o077
    if mode:
        log.warning(
            "%s is readable by other users (mode %03o); the audit log in it holds prompts: "
            "chmod 700 %s",
            data_dir,
            data_dir.stat().st_mode & 0o777,
            data_dir,
        )
