from __future__ import annotations

import types
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Union, get_args, get_origin, get_type_hints

import duckdb

from tollhouse.audit import schema, store
from tollhouse.audit.record import COLUMNS, ExchangeRecord

# The Python type a record field must have for each column type.
PYTHON_TYPE = {
    "VARCHAR": str,
    "TIMESTAMPTZ": datetime,
    "DOUBLE": float,
    "BOOLEAN": bool,
    "INTEGER": int,
    "BIGINT": int,
}

_SPELLED = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}


def _base(annotation: object) -> object:
    """``int | None`` → ``int``."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        assert len(args) == 1, annotation
        return args[0]
    return annotation


def test_exchanges_columns_are_the_record_fields_with_matching_types() -> None:
    columns = schema.TABLES["exchanges"]
    assert tuple(columns) == COLUMNS == tuple(f.name for f in fields(ExchangeRecord))
    hints = get_type_hints(ExchangeRecord)
    for name, kind in columns.items():
        assert _base(hints[name]) is PYTHON_TYPE[kind], (name, hints[name], kind)


def test_the_created_table_has_those_columns(tmp_path: Path) -> None:
    con = store.connect(tmp_path / "a.duckdb")
    try:
        for table, columns in schema.TABLES.items():
            got = con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE table_name = ? ORDER BY column_index",
                [table],
            ).fetchall()
            # DuckDB spells TIMESTAMPTZ out in full
            expected = [(n, _SPELLED.get(t, t)) for n, t in columns.items()]
            assert got == expected, table
        assert schema.current_version(con) == schema.SCHEMA_VERSION
    finally:
        con.close()


def test_ddl_is_valid_sql() -> None:
    con = duckdb.connect()
    con.execute(schema.ddl())
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {*schema.TABLES, "schema_version"}


def test_an_older_file_gains_the_missing_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    # A v0 file: exchanges without the last two columns, no events table, no schema_version.
    old = list(schema.TABLES["exchanges"].items())[:-2]
    con.execute(f"CREATE TABLE exchanges ({', '.join(f'{n} {t}' for n, t in old)})")
    con.execute("INSERT INTO exchanges (id, provider) VALUES ('old-1', 'openai')")
    con.close()

    con = store.connect(db)
    try:
        names = [r[0] for r in con.execute("DESCRIBE exchanges").fetchall()]
        assert names == list(schema.TABLES["exchanges"])
        assert con.execute("SELECT id, provider, response_body FROM exchanges").fetchall() == [
            ("old-1", "openai", None)
        ]
        assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)
        assert schema.current_version(con) == schema.SCHEMA_VERSION
        assert schema.ensure_schema(con) == []  # current now: nothing more to do
    finally:
        con.close()


def test_a_newer_file_is_left_alone(tmp_path: Path) -> None:
    con = store.connect(tmp_path / "new.duckdb")
    try:
        con.execute("ALTER TABLE exchanges ADD COLUMN from_the_future VARCHAR")
        con.execute("INSERT INTO schema_version VALUES (?, now())", [schema.SCHEMA_VERSION + 1])
        assert schema.ensure_schema(con) == []
        store.insert(con, "exchanges", [{"id": "x"}])  # writes the columns it knows
        assert con.execute("SELECT id, from_the_future FROM exchanges").fetchall() == [("x", None)]
    finally:
        con.close()
