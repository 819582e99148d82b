"""Checks apitrail's PostgreSQL port with SQLAlchemy 2 over psycopg 3.

Usage: pg_sqlalchemy.py tables|columns HOST:PORT TOTAL

Runs what Superset and other SQLAlchemy tools do on connect and on schema
sync: dialect initialisation, table and column listing, then a query.
"""

import sys

from sqlalchemy import create_engine, inspect, text

mode, address, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = create_engine(f"postgresql+psycopg://apitrail@{address}/apitrail")

inspector = inspect(engine)


def check_columns():
    columns = {column["name"]: column for column in inspector.get_columns("events")}
    expected_types = {
        "time": "TIMESTAMP",
        "day": "DATE",
        "path": "TEXT",
        "status": "INTEGER",
        "duration_ms": "DOUBLE_PRECISION",
        "request_bytes": "BIGINT",
        "malformed": "BOOLEAN",
    }
    for name, type_name in expected_types.items():
        assert name in columns, f"get_columns('events') lacks {name}: {sorted(columns)}"
        got = type(columns[name]["type"]).__name__.upper()
        assert got == type_name, f"column {name} has type {got}, expected {type_name}"
    assert columns["time"]["type"].timezone, "events.time should be timestamp with time zone"
    assert columns["time"]["nullable"] is False, "events.time is NOT NULL"
    assert columns["path"]["nullable"] is True, "events.path is nullable"


if mode == "columns":
    check_columns()
    print("ok sqlalchemy")
    sys.exit(0)

schemas = inspector.get_schema_names()
assert "public" in schemas, f"get_schema_names() returned {schemas}"

tables = inspector.get_table_names()
assert "events" in tables, f"get_table_names() returned {tables}, without events"
views = inspector.get_view_names()
print("tables", tables, "views", views)

with engine.connect() as conn:
    count = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
    assert count == total, f"count(*) through SQLAlchemy: got {count}, ingested {total}"
    by_status = dict(
        conn.execute(
            text("SELECT status, count(*) FROM events WHERE status = :status GROUP BY status"),
            {"status": 404},
        ).all()
    )
    print("by status", by_status)

print("ok sqlalchemy")
