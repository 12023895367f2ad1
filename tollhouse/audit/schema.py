"""The audit database's tables, and the migration that brings an older file up to date.

Columns are only ever added (``ALTER TABLE ... ADD COLUMN``), never renamed, retyped or dropped:
security teams keep queries against these names. To add a column, append it to its table below
(for ``exchanges``: add the field to :class:`~tollhouse.audit.record.ExchangeRecord`) and bump
:data:`SCHEMA_VERSION` follows by itself; every writer that opens an older file adds it.

There is deliberately no PRIMARY KEY constraint. DuckDB keeps a key's ART index in the file and
loads it on every open; since the writer opens the file once per batch, a key made each 500-row
batch cost ~300 ms at 2 M rows and ~600 ms at 6 M rows (vs ~60 ms without), and the file 5x
larger. Each row's ``id`` is still unique: the writer submits each row once, and spool ingestion
skips ids already present.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields
from types import MappingProxyType

import duckdb

from tollhouse.audit.record import ExchangeRecord

log = logging.getLogger("tollhouse.audit")

Columns = Mapping[str, str]
"""Column name → DuckDB type, in table order."""

# DuckDB types for the record's annotations; `status` is the one column narrower than its type.
_TYPES = {
    "datetime": "TIMESTAMPTZ",
    "bool": "BOOLEAN",
    "int": "BIGINT",
    "float": "DOUBLE",
    "str": "VARCHAR",
}
_EXCHANGE_OVERRIDES = {"status": "INTEGER"}


def exchange_columns() -> dict[str, str]:
    """The ``exchanges`` columns, derived from :class:`ExchangeRecord`'s annotations in order.
    A field whose type has no DuckDB mapping here fails loudly at import."""
    columns = {}
    for f in fields(ExchangeRecord):
        base = str(f.type).split("|")[0].strip()
        columns[f.name] = _EXCHANGE_OVERRIDES.get(f.name) or _TYPES[base]
    return columns


TABLES: Mapping[str, Columns] = MappingProxyType(
    {
        "exchanges": MappingProxyType(exchange_columns()),
        # What a stage noticed or decided about an exchange: warnings, blocks, routing decisions.
        "events": MappingProxyType(
            {
                "id": "VARCHAR",
                "exchange_id": "VARCHAR",
                "at": "TIMESTAMPTZ",
                "stage": "VARCHAR",
                "kind": "VARCHAR",
                "detail": "JSON",
            }
        ),
        # One row per (exchange, detector, entity type, action): counts, never the matched text.
        "findings": MappingProxyType(
            {
                "id": "VARCHAR",
                "exchange_id": "VARCHAR",
                "stage": "VARCHAR",
                "detector": "VARCHAR",
                "entity_type": "VARCHAR",
                "action": "VARCHAR",
                "count": "INTEGER",
                "location": "VARCHAR",
            }
        ),
        # Connections the gateway saw but did not decrypt (consumer AI apps recorded by SNI only).
        "connections": MappingProxyType(
            {
                "id": "VARCHAR",
                "at": "TIMESTAMPTZ",
                "client_addr": "VARCHAR",
                "sni": "VARCHAR",
                "handling": "VARCHAR",
                "bytes_up": "BIGINT",
                "bytes_down": "BIGINT",
                "duration_ms": "DOUBLE",
                "app": "VARCHAR",  # the consumer app, as named in hosts.yaml
                "user_id": "VARCHAR",  # who, when the CONNECT carried proxy credentials
                "team": "VARCHAR",
                "identity_source": "VARCHAR",
            }
        ),
    }
)
"""Every audit table the writer accepts rows for. Each has a unique-by-convention ``id`` column."""


# Columns are only ever added, so their count is a version that only grows: adding a field to
# the record or a column below is all a migration takes.
SCHEMA_VERSION = sum(len(columns) for columns in TABLES.values())


def create_table_sql(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for one of :data:`TABLES`."""
    cols = ",\n    ".join(f"{_quote(name)} {kind}" for name, kind in TABLES[table].items())
    return f"CREATE TABLE IF NOT EXISTS {_quote(table)} (\n    {cols}\n)"


def ddl() -> str:
    """The whole schema as SQL, for documentation and for a fresh file."""
    version = (
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    return ";\n\n".join([*(create_table_sql(t) for t in TABLES), version]) + ";\n"


def current_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The schema version recorded in the file, or None for a file without one (new or foreign)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name = 'schema_version'"
    ).fetchone()
    if not exists or not exists[0]:
        return None
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def ensure_schema(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create missing tables and add missing columns; record :data:`SCHEMA_VERSION`.

    Cheap when the file is current (one catalog query), so the writer calls it on every open.
    Runs in one transaction. Returns what it changed (e.g. ``["exchanges.signed"]``), for logging.
    A file from a newer Tollhouse is left as it is: its extra columns are simply not written.
    """
    version = current_version(con)
    if version is not None and version >= SCHEMA_VERSION:
        return []
    changed: list[str] = []
    con.execute("BEGIN TRANSACTION")
    try:
        for table, columns in TABLES.items():
            existing = {
                row[0]
                for row in con.execute(
                    "SELECT column_name FROM duckdb_columns() "
                    "WHERE database_name = current_database() AND schema_name = 'main' "
                    "AND table_name = ?",
                    [table],
                ).fetchall()
            }
            if not existing:
                con.execute(create_table_sql(table))
                changed.append(table)
                continue
            for name, kind in columns.items():
                if name not in existing:
                    con.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(name)} {kind}")
                    changed.append(f"{table}.{name}")
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
        con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if version is not None and changed:
        log.info(
            "audit schema migrated from v%s to v%s: added %s", version, SCHEMA_VERSION, changed
        )
    return changed


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
