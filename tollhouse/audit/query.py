"""Reading the audit log while the gateway writes it.

The writer holds the database file only for the moment of a batch, so a read-only open succeeds
between batches; :func:`open_readonly` retries with a short backoff until then. Keep read
connections short-lived: while one is open, the writer cannot open the file and spools instead.

A query is one statement, and a query: a SELECT (``WITH``, ``FROM``, ``DESCRIBE``, ``SHOW``,
``SUMMARIZE``, ``VALUES``), a PIVOT or an EXPLAIN; anything else (``SET``, ``CHECKPOINT``,
``ATTACH``, ``COPY``, ``INSTALL``, ``CALL``, ``PRAGMA``, a second statement after ``;``) is refused
before it runs. Behind that check the connection itself is read-only (DuckDB refuses INSERT,
DELETE, DDL on the file), has external access disabled (no ``COPY ... TO``, ``read_csv``,
``read_text``, ``glob``, ``ATTACH``, ``INSTALL``, ``LOAD``, secrets) and its configuration locked
(no setting can be changed, not even through a table function such as ``enable_logging()``).
Times are returned in UTC.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from tollhouse.audit.schema import ensure_schema
from tollhouse.audit.spool import REJECTED_NAME, SPOOL_NAME, count_lines
from tollhouse.audit.store import DB_NAME, is_lock_error


class AuditError(Exception):
    """A problem reading the audit log, with a message meant for the person who asked."""


class DatabaseLocked(AuditError):
    """Another process kept the database open for longer than we were willing to wait."""


class QueryError(AuditError):
    """DuckDB refused the query (syntax, unknown column, an attempt to write...)."""


def database_path(data_dir: Path) -> Path:
    return Path(data_dir) / DB_NAME


def open_readonly(data_dir: Path, wait: float = 5.0) -> duckdb.DuckDBPyConnection:
    """Open the audit database read-only, retrying while another process holds it.

    A deployment that has recorded nothing yet has no file: queries then run against an empty
    in-memory database with the same schema, so they return no rows rather than fail (a script
    that polls the audit works from day one; :func:`no_data_hint` says why it is empty).
    Raises :class:`DatabaseLocked` if the file stays locked for ``wait`` seconds,
    :class:`AuditError` if it cannot be opened at all (e.g. corrupt). Close the connection
    promptly.
    """
    path = database_path(data_dir)
    if not path.exists():
        return _empty_database()
    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        try:
            con = duckdb.connect(
                str(path), read_only=True, config={"enable_external_access": False}
            )
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            # Another process's lock (IOException), or a writer open in this very process
            # (ConnectionException: "different configuration"): both pass; anything else won't.
            if not is_lock_error(exc):
                raise AuditError(f"cannot open {path}: {exc}") from None
            if time.monotonic() + delay > deadline:
                raise DatabaseLocked(
                    f"{path} stayed locked by another process for {wait:g} s "
                    f"(a long-running query?); try again, or raise --wait"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
            continue
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET lock_configuration = true")  # last: nothing can be changed after it
        except BaseException:
            con.close()
            raise
        return con


# What a query may be. PIVOT parses as MULTI (it may expand into several statements), and so does
# CREATE TABLE ... AS PIVOT: MULTI passes only when the text is a PIVOT.
_QUERY_TYPES = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
_FILE_TYPES = {
    duckdb.StatementType.COPY,
    duckdb.StatementType.EXPORT,
    duckdb.StatementType.ATTACH,
    duckdb.StatementType.LOAD,
}
_QUERY_FORMS = "SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, PIVOT or EXPLAIN"


def check_query(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse, before anything runs, whatever is not exactly one query (see the module doc)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(_query_message(exc)) from None
    if not statements:
        raise QueryError("no SQL statement given: write a query, e.g. SELECT * FROM exchanges")
    if len(statements) > 1:
        raise QueryError(
            f"one statement at a time: got {len(statements)} separated by ';' "
            "(none was run; the audit log is read-only here)"
        )
    statement = statements[0]
    try:
        kind = statement.type
    except ValueError:  # a statement type this duckdb's Python API cannot even name
        kind = None
    if kind in _QUERY_TYPES:
        return
    text = statement.query.lstrip().upper()
    if kind == duckdb.StatementType.MULTI and text.startswith(("PIVOT", "UNPIVOT")):
        return
    name = kind.name.replace("_", " ") if kind is not None else text.split(" ", 1)[0]
    files = "; reading or writing other files is disabled" if kind in _FILE_TYPES else ""
    raise QueryError(
        f"the audit log is read-only here: only a query ({_QUERY_FORMS}) is allowed, "
        f"not {name} (nothing was run{files})"
    )


@dataclass
class QueryResult:
    """An open query result: read :meth:`rows` before the ``with`` block ends."""

    columns: list[str]
    types: list[str]
    _cursor: duckdb.DuckDBPyConnection
    chunk: int = 1000

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """The rows, fetched ``chunk`` at a time (a large result is never held whole). JSON columns
        are parsed, so ``detail`` comes back as a dict, not as a string of JSON."""
        parse = [i for i, kind in enumerate(self.types) if kind == "JSON"]
        while True:
            try:
                batch = self._cursor.fetchmany(self.chunk)
            except duckdb.Error as exc:
                raise QueryError(_query_message(exc)) from None
            if not batch:
                return
            for row in batch:
                if parse:
                    values = list(row)
                    for i in parse:
                        if values[i] is not None:
                            values[i] = json.loads(values[i])
                    row = tuple(values)
                yield row


@contextmanager
def stream_query(
    data_dir: Path, sql: str, *, wait: float = 5.0, chunk: int = 1000, timeout: float | None = None
) -> Iterator[QueryResult]:
    """Run one read-only query and stream its rows. The database stays open (and the gateway
    spools instead of writing) until the block ends: consume the rows promptly.

    ``timeout`` (seconds) interrupts a query still running after that long, so that an analyst's
    query cannot keep a live gateway spooling indefinitely. Raises :class:`QueryError` for
    anything but one query (nothing is run then), with DuckDB's message if the query fails, and
    when the timeout stops it.
    """
    con = open_readonly(data_dir, wait)
    timer = threading.Timer(timeout, con.interrupt) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        check_query(con, sql)
        try:
            cur = con.execute(sql)
        except duckdb.Error as exc:
            raise QueryError(_query_message(exc)) from None
        description = cur.description or []
        yield QueryResult(
            columns=[d[0] for d in description],
            types=[str(d[1]) for d in description],
            _cursor=cur,
            chunk=chunk,
        )
    except QueryError:
        if timer is not None and not timer.is_alive():
            raise QueryError(
                f"the query ran for more than {timeout:g} s and was stopped: the gateway cannot "
                "write while it runs (--timeout; for long analysis, query a copy of audit.duckdb)"
            ) from None
        raise
    finally:
        if timer is not None:
            timer.cancel()
        con.close()


def run_query(
    data_dir: Path,
    sql: str,
    *,
    wait: float = 5.0,
    max_rows: int | None = None,
    timeout: float | None = None,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one read-only query; return (column names, rows), JSON columns parsed.

    Raises :class:`QueryError` for anything but one query, or with DuckDB's message if the query
    fails. ``max_rows`` stops fetching after that many rows; for large results prefer
    :func:`stream_query`.
    """
    with stream_query(data_dir, sql, wait=wait, timeout=timeout) as result:
        rows: list[tuple[Any, ...]] = []
        for row in result.rows():
            if max_rows is not None and len(rows) >= max_rows:
                break
            rows.append(row)
        return result.columns, rows


@dataclass(frozen=True)
class UsageRow:
    """Usage of one (provider, model), or the totals when both are None."""

    provider: str | None
    model: str | None
    exchanges: int
    blocked: int
    errors: int
    tokens_in: int
    tokens_out: int
    cost_usd: float


@dataclass(frozen=True)
class Summary:
    """What ``tollhouse audit`` shows with no query."""

    database: Path
    rows: list[UsageRow] = field(default_factory=list)  # by provider and model, costliest first
    total: UsageRow | None = None
    first_at: datetime | None = None
    last_at: datetime | None = None
    spool_pending: int = 0  # rows in audit-spool.jsonl, not yet in the database
    rejected: int = 0  # rows the database refused, kept in audit-rejected.jsonl


# The model the provider says answered, else the one we sent, else the one asked for.
_SUMMARY_SQL = """
SELECT provider,
       coalesce(model_answered, model_sent, model_requested) AS model,
       count(*) AS exchanges,
       count(*) FILTER (WHERE decision = 'block') AS blocked,
       count(*) FILTER (WHERE decision = 'error') AS errors,
       coalesce(sum(tokens_in), 0) AS tokens_in,
       coalesce(sum(tokens_out), 0) AS tokens_out,
       coalesce(sum(cost_usd), 0) AS cost_usd
FROM exchanges
GROUP BY GROUPING SETS ((provider, model), ())
ORDER BY grouping(provider, model) ASC, cost_usd DESC, exchanges DESC, provider, model
"""


def summary(data_dir: Path, *, wait: float = 5.0) -> Summary:
    """Exchanges, tokens and cost by provider and model, totals, time range, and spool backlog."""
    con = open_readonly(data_dir, wait)
    try:
        try:
            grouped = con.execute(_SUMMARY_SQL).fetchall()
            span = con.execute("SELECT min(started_at), max(started_at) FROM exchanges").fetchone()
        except duckdb.Error as exc:
            raise QueryError(_query_message(exc)) from None
    finally:
        con.close()
    by_model = [_usage(r) for r in grouped[:-1]]
    total = _usage(grouped[-1]) if grouped else None
    first, last = span if span else (None, None)
    return Summary(
        database=database_path(data_dir),
        rows=by_model,
        total=total,
        first_at=first,
        last_at=last,
        spool_pending=count_lines(Path(data_dir) / SPOOL_NAME),
        rejected=count_lines(Path(data_dir) / REJECTED_NAME),
    )


def _usage(row: tuple[Any, ...]) -> UsageRow:
    provider, model, exchanges, blocked, errors, tokens_in, tokens_out, cost = row
    return UsageRow(
        provider, model, int(exchanges), int(blocked), int(errors),
        int(tokens_in), int(tokens_out), float(cost),
    )  # fmt: skip


def _query_message(exc: duckdb.Error) -> str:
    text = str(exc).strip()
    if "read-only mode" in text:
        return f"the audit log is read-only here; only queries are allowed ({text})"
    return text


def no_data_hint(data_dir: Path) -> str | None:
    """One line for stderr when ``data_dir`` holds no audit database yet, else None."""
    if database_path(data_dir).exists():
        return None
    return _no_database_message(Path(data_dir))


def _empty_database() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config={"enable_external_access": False})
    try:
        ensure_schema(con)
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _no_database_message(data_dir: Path) -> str:
    message = (
        f"no audit data yet: {database_path(data_dir)} does not exist; the gateway creates it on "
        f"the first exchange it records (is --data pointing at the gateway's data folder?)"
    )
    pending = count_lines(data_dir / SPOOL_NAME)
    if pending:
        message += f"; {pending} row(s) are waiting in {data_dir / SPOOL_NAME}"
    return message
