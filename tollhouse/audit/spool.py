"""The spool: audit rows that could not reach the database yet, kept as JSON lines until they can.

One line per row, ``{"table": ..., "row": {...}}``, with datetimes as ISO 8601 strings. Rows are
stored as they were submitted (before any conversion for DuckDB), so ingesting a spooled row does
exactly what inserting it directly would have done. Every append is fsynced before it returns.

Appends and the read-ingest-truncate cycle hold an exclusive ``flock`` on the file, so two gateway
processes sharing a data folder cannot lose each other's lines between a read and a truncate.

The spool and the rejected-rows file hold prompts: they are created readable by their owner only
(0600), and made so if an older run left them more open. Text that is not valid UTF-8 (mitmproxy
turns undecodable bytes in headers, paths and bodies into lone surrogates) is written as JSON
escapes, so it can always be spooled. A line cut short by a crash never swallows the next append,
and a line that cannot be read is moved to the rejected file rather than blocking the spool.

The spool is not bounded: the gateway never drops an audit row. While the database stays
unavailable (a long query holding it, a full disk, a corrupt file) the spool grows by each row's
size, request and response bodies included; the writer logs a warning as it passes
``SPOOL_WARN_BYTES`` and each doubling after that, and ``tollhouse audit`` shows the backlog.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

try:  # POSIX only; without it a single gateway process per data folder is still safe.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("tollhouse.audit")

SPOOL_NAME = "audit-spool.jsonl"
REJECTED_NAME = "audit-rejected.jsonl"

Entry = tuple[str, dict[str, Any]]
"""(table, row) as submitted."""


def json_default(value: object) -> object:
    """``json.dumps`` fallback for audit values: datetimes as ISO 8601, Decimals as numbers."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def encode_line(table: str, row: dict[str, Any], **extra: Any) -> bytes:
    """One spool (or rejected) line as UTF-8, newline included. Never fails on text that is not
    valid UTF-8: such a line is written with ASCII escapes, which read back to the same text."""
    obj = {"table": table, "row": row, **extra}
    text = json.dumps(obj, default=json_default, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # lone surrogates
        text = json.dumps(obj, default=json_default, ensure_ascii=True, separators=(",", ":"))
        return text.encode("ascii") + b"\n"


def open_private(path: Path, flags: int) -> int:
    """Open (creating if need be) a file readable by its owner only; returns the descriptor."""
    fd = os.open(path, flags | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)  # left more open by an older version or by hand
    except BaseException:
        os.close(fd)
        raise
    return fd


def count_lines(path: Path) -> int:
    """Rows waiting in a spool (or rejected) file; 0 if there is none."""
    try:
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


class Spool:
    """A JSON-lines file of rows waiting for the database. Safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entries: Iterable[Entry]) -> int:
        """Append rows and fsync; return how many. Raises OSError if the disk fails."""
        lines = [encode_line(table, row) for table, row in entries]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _append(self.path, lines)
        return len(lines)

    def size(self) -> int:
        """Bytes waiting; 0 if there is no spool."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def count(self) -> int:
        """Rows currently waiting."""
        return count_lines(self.path)

    def drain(self, ingest: Callable[[list[Entry]], None], *, chunk: int = 1000) -> int:
        """Hand every waiting row to ``ingest``, ``chunk`` rows at a time (a spool that grew to
        gigabytes is never read whole); truncate the file only once every call has returned.

        ``ingest`` must be idempotent (skip rows already in the database): if the process dies
        (or ``ingest`` raises) part-way, every row is offered again next time. Lines that cannot
        be read (a write cut short by a crash) are moved to the rejected file. Returns the number
        of rows offered; 0 (without calling ``ingest``) if none.
        """
        try:
            if self.path.stat().st_size == 0:
                return 0  # the usual case: no lock, no fsync on every batch
            f = self.path.open("r+b")
        except FileNotFoundError:
            return 0
        offered = 0
        with f, _locked(f):
            entries: list[Entry] = []
            bad: list[bytes] = []
            for line in f:
                entry = _parse_line(line)
                if entry is None:
                    if line.strip():
                        bad.append(line)
                    continue
                entries.append(entry)
                if len(entries) >= chunk:
                    ingest(entries)
                    offered += len(entries)
                    entries = []
            if entries:
                ingest(entries)
                offered += len(entries)
            if bad:
                reject_lines(self.path.parent, bad)
            f.seek(0)
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
        return offered


def reject(data_dir: Path, entries: Iterable[tuple[str, dict[str, Any], str]]) -> int:
    """Keep rows the database refused (bad values) in ``audit-rejected.jsonl``, with the error."""
    lines = [encode_line(table, row, error=error) for table, row, error in entries]
    return reject_lines(data_dir, lines)


def reject_lines(data_dir: Path, lines: list[bytes]) -> int:
    """Append lines (kept byte for byte, even those that are not valid UTF-8) to the rejected
    file. The log says how many and where, never what: the lines hold prompts."""
    if not lines:
        return 0
    path = data_dir / REJECTED_NAME
    _append(path, [line if line.endswith(b"\n") else line + b"\n" for line in lines])
    log.error("audit: %d row(s) the database refused were kept in %s", len(lines), path)
    return len(lines)


def _append(path: Path, lines: list[bytes]) -> None:
    """Append whole lines under the lock, fsynced. If a crash cut the last line short (no final
    newline), start on a new line, so the rows appended now are not glued to it and lost."""
    fd = open_private(path, os.O_RDWR | os.O_APPEND)
    with os.fdopen(fd, "r+b", buffering=0) as f, _locked(f):
        end = f.seek(0, os.SEEK_END)
        if end:
            f.seek(end - 1)
            if f.read(1) != b"\n":
                lines = [b"\n", *lines]
        data = memoryview(b"".join(lines))
        while data:  # a raw write may be partial
            written = f.write(data)
            if not written:
                raise OSError(f"could not append to {path}")
            data = data[written:]
        os.fsync(f.fileno())


def _parse_line(line: bytes) -> Entry | None:
    """One spool line as (table, row); None for a blank line or one that cannot be read."""
    if not line.strip():
        return None
    try:
        obj = json.loads(line.decode("utf-8"))
        return str(obj["table"]), dict(obj["row"])
    except (ValueError, KeyError, TypeError):  # UnicodeDecodeError is a ValueError
        return None


@contextmanager
def _locked(f: IO[Any]) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
