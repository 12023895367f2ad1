"""The spool: audit rows that could not reach the database yet, kept as JSON lines until they can.

One line per row, ``{"table": ..., "row": {...}}``, with datetimes as ISO 8601 strings. Rows are
stored as they were submitted (before any conversion for DuckDB), so ingesting a spooled row does
exactly what inserting it directly would have done. Every append is fsynced before it returns.

Appends and the read-ingest-truncate cycle hold an exclusive ``flock`` on the file, so two gateway
processes sharing a data folder cannot lose each other's lines between a read and a truncate.
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


def encode_line(table: str, row: dict[str, Any], **extra: Any) -> str:
    """One spool (or rejected) line, newline included."""
    obj = {"table": table, "row": row, **extra}
    return json.dumps(obj, default=json_default, ensure_ascii=False, separators=(",", ":")) + "\n"


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
        data = "".join(encode_line(table, row) for table, row in entries)
        if not data:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f, _locked(f):
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return data.count("\n")

    def count(self) -> int:
        """Rows currently waiting."""
        return count_lines(self.path)

    def drain(self, ingest: Callable[[list[Entry]], None]) -> int:
        """Hand every waiting row to ``ingest``; truncate the file only if it returns.

        ``ingest`` must be idempotent (skip rows already in the database): if the process dies
        after it commits and before the truncate, the same rows are offered again next time.
        Lines that are not valid JSON (a write cut short by a crash) are moved to the rejected
        file. Returns the number of rows offered; 0 (without calling ``ingest``) if none.
        """
        try:
            if self.path.stat().st_size == 0:
                return 0  # the usual case: no lock, no fsync on every batch
            f = self.path.open("r+", encoding="utf-8")
        except FileNotFoundError:
            return 0
        with f, _locked(f):
            entries, bad = _parse(f)
            if entries:
                ingest(entries)
            if bad:
                reject_lines(self.path.parent, bad)
            f.seek(0)
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
        return len(entries)


def reject(data_dir: Path, entries: Iterable[tuple[str, dict[str, Any], str]]) -> int:
    """Keep rows the database refused (bad values) in ``audit-rejected.jsonl``, with the error."""
    lines = [encode_line(table, row, error=error) for table, row, error in entries]
    return reject_lines(data_dir, lines)


def reject_lines(data_dir: Path, lines: list[str]) -> int:
    if not lines:
        return 0
    path = data_dir / REJECTED_NAME
    with path.open("a", encoding="utf-8") as f, _locked(f):
        f.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
        f.flush()
        os.fsync(f.fileno())
    log.error("audit: %d row(s) the database refused were kept in %s", len(lines), path)
    return len(lines)


def _parse(f: IO[str]) -> tuple[list[Entry], list[str]]:
    entries: list[Entry] = []
    bad: list[str] = []
    for line in f:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            entries.append((str(obj["table"]), dict(obj["row"])))
        except (ValueError, KeyError, TypeError):
            bad.append(line)
    return entries, bad


@contextmanager
def _locked(f: IO[str]) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
