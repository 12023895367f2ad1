"""The audit log: one DuckDB file per deployment (``<data>/audit.duckdb``), append-only.

``writer.AuditWriter`` takes rows from the request path; ``query`` reads them back, read-only;
``schema`` says what the tables are; ``spool`` keeps rows the database could not take yet.
"""
