"""Checks apitrail's PostgreSQL port with psycopg 3, one scenario per run.

Usage: pg_psycopg.py SCENARIO HOST:PORT [ARGS...]

Each scenario asserts what it expects and prints `ok SCENARIO` at the end,
so the calling Rust test fails with the assertion message when a check fails.
"""

import datetime
import json
import sys
import threading
import time

import psycopg
from psycopg import errors

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)

# A cross join of 10^10 rows: minutes of work, so it is still running when
# the test cancels it after a second.
SLOW_QUERY = (
    "SELECT max(a.value + b.value) AS m "
    "FROM generate_series(1, 100000) AS a CROSS JOIN generate_series(1, 100000) AS b"
)


def connect(address, **kwargs):
    host, port = address.rsplit(":", 1)
    return psycopg.connect(
        host=host,
        port=int(port),
        user="apitrail",
        dbname="apitrail",
        connect_timeout=10,
        autocommit=kwargs.pop("autocommit", True),
        **kwargs,
    )


def micros(value):
    """Microseconds since the Unix epoch of an aware datetime."""
    assert value.tzinfo is not None, f"expected an aware timestamp, got {value!r}"
    return (value - EPOCH) // datetime.timedelta(microseconds=1)


def scenario_simple(address, total, ok_count):
    with connect(address) as conn:
        row = conn.execute("SELECT count(*) AS n FROM events").fetchone()
        assert row[0] == int(total), f"count(*) over events: got {row[0]}, ingested {total}"
        row = conn.execute("SELECT count(*) FROM events WHERE status = 200").fetchone()
        assert row[0] == int(ok_count), f"count of status 200: got {row[0]}, expected {ok_count}"
        # Several statements in one simple-protocol message.
        cur = conn.cursor()
        cur.execute("SELECT 1 AS one; SELECT 2 AS two")
        assert cur.fetchone() == (1,), "first result of a two-statement query"
        assert cur.nextset(), "a two-statement query returns a second result"
        assert cur.fetchone() == (2,), "second result of a two-statement query"


def scenario_params(address, ok_count, first_time_us):
    start = EPOCH + datetime.timedelta(microseconds=int(first_time_us))
    with connect(address) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE status = %s AND path LIKE %s AND time >= %s",
            (200, "/ok/%", start),
        ).fetchone()
        assert row[0] == int(ok_count), (
            f"count with int, text and timestamp parameters: got {row[0]}, expected {ok_count}"
        )
        row = conn.execute("SELECT %s::text AS v, %s::bigint AS w", (None, 7)).fetchone()
        assert row == (None, 7), f"NULL and integer parameters came back as {row!r}"
        row = conn.execute(
            "SELECT count(*) FROM events WHERE path = %s", ("/no/such/path",)
        ).fetchone()
        assert row[0] == 0, f"a text parameter that matches nothing counted {row[0]} rows"


def scenario_binary(address, total, first_time_us):
    with connect(address) as conn:
        cur = conn.cursor(binary=True)
        cur.execute(
            "SELECT count(*) AS n, min(time) AS first, min(status) AS low, "
            "min(duration_ms) AS d, bool_or(malformed) AS m FROM events"
        )
        count, first, low, _duration, _malformed = cur.fetchone()
        formats = [column.type_code for column in cur.description]
        assert count == int(total), f"binary count(*): got {count}, expected {total}"
        assert micros(first) == int(first_time_us), (
            f"binary min(time): got {first.isoformat()} ({micros(first)} us), "
            f"HTTP API says {first_time_us} us"
        )
        assert low in (200, 404), f"binary min(status) is {low!r}"
        assert cur.pgresult.fformat(0) == 1, "count(*) was not sent in binary format"
        print("binary type oids", formats)


def scenario_prepared(address, expected_json):
    expected = json.loads(expected_json)
    with connect(address, prepare_threshold=5) as conn:
        for execution in range(10):
            for binary in (False, True):
                cur = conn.cursor(binary=binary)
                cur.execute(
                    "SELECT path, time FROM events WHERE status = %s ORDER BY time, path LIMIT %s",
                    (200, len(expected)),
                )
                rows = cur.fetchall()
                got = [[path, micros(value)] for path, value in rows]
                assert got == expected, (
                    f"execution {execution + 1} (binary={binary}) returned {got}, "
                    f"HTTP API says {expected}"
                )
        prepared = conn.execute(
            "SELECT 1"
        )  # a plain statement still works after server-side prepares
        assert prepared.fetchone() == (1,)


def scenario_session(address):
    with connect(address, autocommit=False) as conn:
        cur = conn.cursor()
        cur.execute("SET application_name = 'apitrail-tests'")
        assert cur.statusmessage == "SET", f"SET tag: {cur.statusmessage!r}"
        cur.execute("SHOW application_name")
        assert cur.fetchone()[0] == "apitrail-tests", "SHOW after SET application_name"
        cur.execute("SET SESSION work_mem = '64MB'")
        assert cur.statusmessage == "SET", f"SET SESSION tag: {cur.statusmessage!r}"
        cur.execute("SHOW work_mem")
        assert cur.fetchone()[0] == "64MB", "SHOW after SET SESSION work_mem"
        cur.execute("SHOW server_version")
        assert cur.fetchone()[0].startswith("16."), "SHOW server_version"
        cur.execute("SHOW DateStyle")
        assert cur.fetchone()[0] == "ISO, MDY", "SHOW DateStyle"
        cur.execute("SELECT set_config('application_name', 'other', false)")
        assert cur.fetchone()[0] == "other", "set_config returns the new value"
        conn.commit()
    with connect(address, autocommit=True) as conn:
        cur = conn.cursor()
        for statement, tag in [
            ("BEGIN", "BEGIN"),
            ("SELECT 1", "SELECT 1"),
            ("COMMIT", "COMMIT"),
            ("START TRANSACTION", "BEGIN"),
            ("ROLLBACK", "ROLLBACK"),
            ("DISCARD ALL", "DISCARD ALL"),
            ("DEALLOCATE ALL", "DEALLOCATE"),
        ]:
            cur.execute(statement)
            assert cur.statusmessage == tag, (
                f"{statement} returned tag {cur.statusmessage!r}, expected {tag!r}"
            )
        info = conn.info
        for name, value in [
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("TimeZone", "UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
        ]:
            got = info.parameter_status(name)
            assert got == value, f"startup parameter {name} is {got!r}, expected {value!r}"
        assert info.server_version >= 160000, f"server_version is {info.server_version}"


def scenario_version(address):
    with connect(address) as conn:
        version = conn.execute("SELECT version()").fetchone()[0]
        assert version.startswith("PostgreSQL 16."), f"version() is {version!r}"
        assert "apitrail" in version, f"version() does not name apitrail: {version!r}"
        number = conn.execute("SELECT current_setting('server_version_num')").fetchone()[0]
        assert number.startswith("16"), f"server_version_num is {number!r}"
        assert int(number) >= 160000, f"server_version_num is {number!r}"


def scenario_readonly(address):
    with connect(address) as conn:
        for statement in [
            "CREATE TABLE t (a int)",
            "INSERT INTO events (path) VALUES ('/x')",
            "DROP TABLE events",
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/tmp/x.csv'",
            "COPY events TO '/tmp/events.csv'",
        ]:
            try:
                conn.execute(statement)
            except psycopg.Error as error:
                state = error.sqlstate
                assert state in ("25006", "42501"), (
                    f"{statement!r} failed with SQLSTATE {state}, expected 25006: {error}"
                )
                assert "read-only" in str(error), f"{statement!r} error text: {error}"
            else:
                raise AssertionError(f"{statement!r} was accepted on a read-only server")
        # The connection still works after the rejections.
        assert conn.execute("SELECT 1").fetchone() == (1,)
        try:
            conn.execute("SELECT * FROM no_such_table")
        except psycopg.Error as error:
            assert error.sqlstate == "42P01", f"unknown table: SQLSTATE {error.sqlstate}: {error}"
        else:
            raise AssertionError("a query on an unknown table succeeded")
        try:
            conn.execute("SELEC 1")
        except psycopg.Error as error:
            assert error.sqlstate == "42601", f"syntax error: SQLSTATE {error.sqlstate}: {error}"
        else:
            raise AssertionError("a misspelt query succeeded")


def scenario_cancel(address):
    with connect(address) as conn:

        def cancel_later():
            time.sleep(1.0)
            conn.cancel_safe()

        thread = threading.Thread(target=cancel_later)
        started = time.monotonic()
        thread.start()
        try:
            conn.execute(SLOW_QUERY)
        except errors.QueryCanceled as error:
            elapsed = time.monotonic() - started
            assert error.sqlstate == "57014", f"cancel SQLSTATE {error.sqlstate}"
            assert elapsed < 20, f"the cancel took {elapsed:.1f} s to stop the query"
            print(f"cancelled after {elapsed:.2f} s: {error}")
        else:
            raise AssertionError("the slow query finished instead of being cancelled")
        finally:
            thread.join()
        assert conn.execute("SELECT 1").fetchone() == (1,), "connection unusable after cancel"


def scenario_slow(address):
    """Runs the slow query until the parent process kills this one."""
    with connect(address) as conn:
        print("started", flush=True)
        conn.execute(SLOW_QUERY)


def scenario_fixtures(address, *paths):
    """Runs each fixture file as one statement and checks its `-- expect-value:`
    lines. A file marked `-- known-failure: REASON` must still fail, so that
    the marker goes once the query works. Reports every failing file at once."""
    failures = []
    with connect(address) as conn:
        for path in paths:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            lines = text.splitlines()
            expect = [line.split(":", 1)[1].strip() for line in lines if line.startswith("-- expect-value:")]
            known = [line.split(":", 1)[1].strip() for line in lines if line.startswith("-- known-failure:")]
            try:
                cur = conn.execute(text)
                rows = cur.fetchall() if cur.description else []
            except psycopg.Error as error:
                if known:
                    print(f"known failure {path}: SQLSTATE {error.sqlstate}: {error}")
                else:
                    failures.append(f"{path} failed: SQLSTATE {error.sqlstate}: {error}")
                continue
            if known:
                failures.append(f"{path} now succeeds: remove its known-failure marker")
                continue
            values = {str(value) for row in rows for value in row}
            missing = [value for value in expect if value not in values]
            if missing:
                failures.append(f"{path} returned no {missing} among {len(rows)} rows")
            else:
                print(f"passed {path}: {len(rows)} rows")
    assert not failures, "catalog queries failed:\n" + "\n".join(failures)


def scenario_truncated(address, limit):
    """A result longer than the row limit is cut with a WARNING notice, on
    the extended protocol (the default cursor) and the simple one
    (ClientCursor). Prints a JSON line for the Rust test to check."""
    limit = int(limit)
    out = {}
    with connect(address) as conn:
        notices = []
        conn.add_notice_handler(
            lambda diag: notices.append(
                {"severity": diag.severity, "sqlstate": diag.sqlstate, "message": diag.message_primary}
            )
        )
        sql = f"SELECT value FROM generate_series(1, {limit * 10}) AS t(value)"
        for name, cursor in [("extended", conn.cursor()), ("simple", psycopg.ClientCursor(conn))]:
            notices.clear()
            cursor.execute(sql)
            rows = cursor.fetchall()
            out[name] = {
                "rows": len(rows),
                "last": rows[-1][0] if rows else None,
                "status": cursor.statusmessage,
                "notices": list(notices),
            }
        notices.clear()
        short = conn.execute(f"SELECT value FROM generate_series(1, {limit}) AS t(value)").fetchall()
        out["exact"] = {"rows": len(short), "notices": list(notices)}
        # The connection still runs queries after a cut.
        out["after"] = conn.execute("SELECT 41 + 1").fetchone()[0]
    print(json.dumps(out))


def scenario_errors(address, *statements):
    """Runs each statement and prints its SQLSTATE and message as JSON, or null when it succeeds."""
    out = {}
    with connect(address) as conn:
        for sql in statements:
            try:
                conn.execute(sql).fetchall()
                out[sql] = None
            except psycopg.Error as error:
                out[sql] = {"sqlstate": error.sqlstate, "message": str(error)}
        out["after"] = conn.execute("SELECT 41 + 1").fetchone()[0]
    print(json.dumps(out))


SCENARIOS = {
    "simple": scenario_simple,
    "params": scenario_params,
    "binary": scenario_binary,
    "prepared": scenario_prepared,
    "session": scenario_session,
    "version": scenario_version,
    "readonly": scenario_readonly,
    "cancel": scenario_cancel,
    "slow": scenario_slow,
    "fixtures": scenario_fixtures,
    "truncated": scenario_truncated,
    "errors": scenario_errors,
}

if __name__ == "__main__":
    name, address, *rest = sys.argv[1:]
    SCENARIOS[name](address, *rest)
    print(f"ok {name}")
