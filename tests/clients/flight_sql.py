"""Flight SQL client checks, run by tests/tests/flight_sql.rs.

Usage: flight_sql.py SCENARIO grpc://127.0.0.1:PORT [ARGS...]

Each scenario connects with a stock driver: the ADBC Flight SQL driver, or
pyarrow.flight for the raw protocol. It asserts what it can check on its own
and prints one JSON document on stdout for the Rust test to compare with
the results of the HTTP API.
"""

import json
import signal
import sys
import threading
import time

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pyarrow.flight as flight

# A query that runs for minutes unless cancelled.
SLOW_SQL = "SELECT count(*) AS n FROM generate_series(1, 100000000000) AS t(v) WHERE v % 7 = 3"


def encode_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_bytes(number, payload):
    """A length-delimited protobuf field."""
    return encode_varint((number << 3) | 2) + encode_varint(len(payload)) + payload


def field_bool(number, value):
    return encode_varint(number << 3) + encode_varint(1 if value else 0)


def field_int(number, value):
    return encode_varint(number << 3) + encode_varint(value)


def command(name, body=b""):
    """Wraps a Flight SQL command message in google.protobuf.Any."""
    type_url = ("type.googleapis.com/arrow.flight.protocol.sql." + name).encode()
    return field_bytes(1, type_url) + field_bytes(2, body)


def fetch_command(client, cmd):
    """GetFlightInfo then DoGet on its ticket: the metadata round trip."""
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd))
    assert len(info.endpoints) == 1, f"expected one endpoint, got {len(info.endpoints)}"
    reader = client.do_get(info.endpoints[0].ticket)
    table = reader.read_all()
    assert table.schema.equals(info.schema), (
        f"DoGet schema {table.schema} differs from GetFlightInfo schema {info.schema}"
    )
    return table


def table_json(table):
    return {
        "columns": table.column_names,
        "types": [str(t) for t in table.schema.types],
        "rows": [list(row.values()) for row in table.to_pylist()],
    }


def scenario_query(url):
    with flightsql.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT status, count(*) AS calls, min(time) AS first "
            "FROM events GROUP BY status ORDER BY status"
        )
        table = cur.fetch_arrow_table()
        cur.execute("SELECT count(*) AS n FROM events")
        (total,) = cur.fetchone()
    result = table_json(table)
    result["rows"] = [[r[0], r[1], r[2].isoformat()] for r in result["rows"]]
    result["total"] = total
    return result


def scenario_stream(url):
    """A large result arrives as many batches, not as one message."""
    client = flight.connect(url)
    sql = "SELECT v, v * 2 AS twice FROM generate_series(1, 300000) AS t(v)"
    cmd = command("CommandStatementQuery", field_bytes(1, sql.encode()))
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd))
    reader = client.do_get(info.endpoints[0].ticket)
    batches = 0
    rows = 0
    total = 0
    for chunk in reader:
        batches += 1
        rows += chunk.data.num_rows
        total += pa.compute.sum(chunk.data.column(0)).as_py() or 0
    return {"batches": batches, "rows": rows, "sum": total}


def scenario_prepared(url):
    out = {}
    with flightsql.connect(url) as conn, conn.cursor() as cur:
        # The same prepared statement with new parameters, ten times.
        counts = []
        for status in [200, 404, 500, 200, 404, 500, 200, 404, 500, 200]:
            cur.execute("SELECT count(*) AS n FROM events WHERE status = ?", parameters=(status,))
            counts.append(cur.fetchone()[0])
        out["counts"] = counts
        cur.execute("SELECT ? IS NULL AS is_null, ? AS label", parameters=(None, "text"))
        out["null_param"] = list(cur.fetchone())
        cur.execute(
            "SELECT count(*) FROM events WHERE time >= ? AND path LIKE ?",
            parameters=("2024-03-01T12:00:00Z", "/v1/%"),
        )
        out["typed_params"] = cur.fetchone()[0]
        # A statement with ? inside a literal keeps it as text.
        cur.execute("SELECT '?' AS q, ? AS p", parameters=(7,))
        out["literal_question_mark"] = list(cur.fetchone())
        # A batch of three parameter rows runs the statement once per row.
        cur.execute("SELECT ? * 10 AS v", parameters=pa.record_batch([pa.array([1, 2, 3])], names=["p"]))
        out["parameter_batch"] = [row[0] for row in cur.fetchall()]
    return out


def scenario_metadata(url):
    out = {}
    with flightsql.connect(url) as conn:
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        tables = {}
        for catalog in objects:
            for schema in catalog["catalog_db_schemas"] or []:
                for table in schema["db_schema_tables"] or []:
                    key = f'{catalog["catalog_name"]}.{schema["db_schema_name"]}.{table["table_name"]}'
                    tables[key] = {
                        "type": table["table_type"],
                        "columns": [c["column_name"] for c in table["table_columns"] or []],
                    }
        out["objects"] = tables
        schema = conn.adbc_get_table_schema("events")
        out["events_schema"] = {f.name: str(f.type) for f in schema}
        out["table_types"] = sorted(conn.adbc_get_table_types())
        info = conn.adbc_get_info()
        out["info"] = {str(k): v for k, v in info.items()}

    client = flight.connect(url)
    raw = {}
    raw["catalogs"] = fetch_command(client, command("CommandGetCatalogs")).to_pylist()
    raw["schemas"] = fetch_command(
        client, command("CommandGetDbSchemas", field_bytes(1, b"apitrail"))
    ).to_pylist()
    # GetTables: catalog apitrail, schema pattern "pub%", table pattern "e%", include_schema.
    tables = fetch_command(
        client,
        command(
            "CommandGetTables",
            field_bytes(1, b"apitrail")
            + field_bytes(2, b"pub%")
            + field_bytes(3, b"e%")
            + field_bool(5, True),
        ),
    )
    raw["tables"] = []
    for row in tables.to_pylist():
        table_schema = pa.ipc.read_schema(pa.py_buffer(row["table_schema"]))
        raw["tables"].append(
            {
                "name": row["table_name"],
                "type": row["table_type"],
                "columns": {f.name: str(f.type) for f in table_schema},
            }
        )
    raw["table_types"] = fetch_command(client, command("CommandGetTableTypes")).to_pylist()
    # GetSqlInfo for server name (0), read-only (3) and the identifier quote (504).
    sql_info = fetch_command(
        client,
        command("CommandGetSqlInfo", b"".join(field_int(1, i) for i in [0, 3, 504])),
    )
    raw["sql_info"] = {row["info_name"]: row["value"] for row in sql_info.to_pylist()}
    raw["sql_info_all_rows"] = fetch_command(client, command("CommandGetSqlInfo")).num_rows
    types = fetch_command(client, command("CommandGetXdbcTypeInfo"))
    raw["xdbc_types"] = [row["type_name"] for row in types.to_pylist()]
    # GetXdbcTypeInfo filtered to data_type 93 (TIMESTAMP).
    raw["xdbc_timestamp"] = [
        row["type_name"]
        for row in fetch_command(
            client, command("CommandGetXdbcTypeInfo", field_int(1, 93))
        ).to_pylist()
    ]
    raw["primary_keys"] = fetch_command(
        client, command("CommandGetPrimaryKeys", field_bytes(3, b"events"))
    ).num_rows
    raw["imported_keys"] = fetch_command(
        client, command("CommandGetImportedKeys", field_bytes(3, b"events"))
    ).num_rows
    out["raw"] = raw
    return out


def scenario_errors(url):
    out = {}
    client = flight.connect(url)
    for name, sql in [
        ("syntax", "SELEC 1"),
        ("unknown_table", "SELECT * FROM no_such_table"),
        ("create", "CREATE TABLE t (a INT)"),
        ("insert", "INSERT INTO events (path) VALUES ('/x')"),
        ("copy", "COPY events TO '/tmp/apitrail-flight-copy.parquet'"),
        ("external", "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'"),
    ]:
        cmd = command("CommandStatementQuery", field_bytes(1, sql.encode()))
        try:
            client.get_flight_info(flight.FlightDescriptor.for_command(cmd))
            out[name] = {"error": None}
        except (flight.FlightError, pa.ArrowException) as e:
            # pyarrow raises ArrowInvalid for INVALID_ARGUMENT and FlightError subclasses for other codes.
            out[name] = {"error": type(e).__name__, "message": str(e)}
    # The same errors reach DB-API users as exceptions.
    with flightsql.connect(url) as conn, conn.cursor() as cur:
        try:
            cur.execute("DROP TABLE events")
            out["dbapi_drop"] = None
        except Exception as e:  # noqa: BLE001 - the type is what the test reports
            out["dbapi_drop"] = f"{type(e).__name__}: {e}"
    return out


# Values of the CancelStatus enum of the Flight protocol.
CANCEL_STATUS = {0: "UNSPECIFIED", 1: "CANCELLED", 2: "CANCELLING", 3: "NOT_CANCELLABLE"}


def cancel_flight_info(client, info):
    """Sends the CancelFlightInfo action, which pyarrow 26 has no method for."""
    body = field_bytes(1, info.serialize())
    results = list(client.do_action(flight.Action("CancelFlightInfo", body)))
    assert len(results) == 1, f"CancelFlightInfo returned {len(results)} results"
    payload = results[0].body.to_pybytes()
    # CancelFlightInfoResult has one field: status = 1, a varint.
    status = payload[1] if payload[:1] == b"\x08" else 0
    return CANCEL_STATUS.get(status, str(status))


def scenario_cancel(url):
    """CancelFlightInfo stops a running query, and ADBC's cancel does too."""
    out = {"interrupts": 0}

    # pyarrow 26 reports a CANCELLED call on one thread also as a simulated
    # SIGINT to the main thread. Counting it keeps the scenario running.
    def count_interrupt(_signum, _frame):
        out["interrupts"] += 1

    signal.signal(signal.SIGINT, count_interrupt)
    client = flight.connect(url)
    cmd = command("CommandStatementQuery", field_bytes(1, SLOW_SQL.encode()))
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd))
    outcome = {}

    def read():
        started = time.monotonic()
        try:
            client.do_get(info.endpoints[0].ticket).read_all()
            outcome["error"] = None
        except flight.FlightError as e:
            outcome["error"] = f"{type(e).__name__}: {e}"
        outcome["seconds"] = time.monotonic() - started

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(1.5)
    out["flight_status"] = cancel_flight_info(client, info)
    reader.join(timeout=60)
    out["flight_reader_alive"] = reader.is_alive()
    out["flight_outcome"] = outcome

    # A ticket cancelled before its DoGet never runs.
    info2 = client.get_flight_info(flight.FlightDescriptor.for_command(cmd))
    cancel_flight_info(client, info2)
    try:
        client.do_get(info2.endpoints[0].ticket).read_all()
        out["cancelled_before_start"] = None
    except flight.FlightError as e:
        out["cancelled_before_start"] = f"{type(e).__name__}: {e}"

    with flightsql.connect(url) as conn, conn.cursor() as cur:
        adbc = {}

        def run():
            started = time.monotonic()
            try:
                cur.execute(SLOW_SQL)
                cur.fetchall()
                adbc["error"] = None
            except Exception as e:  # noqa: BLE001 - the type is what the test reports
                adbc["error"] = f"{type(e).__name__}: {e}"
            adbc["seconds"] = time.monotonic() - started

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        time.sleep(1.5)
        cur.adbc_cancel()
        worker.join(timeout=60)
        out["adbc_alive"] = worker.is_alive()
        out["adbc_outcome"] = adbc
        # The connection still runs queries after a cancel.
        cur.execute("SELECT 41 + 1")
        out["after_cancel"] = cur.fetchone()[0]
    return out


def read_chunks(client, sql):
    """Runs `sql` with GetFlightInfo and DoGet and reads the stream chunk by chunk."""
    cmd = command("CommandStatementQuery", field_bytes(1, sql.encode()))
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd))
    reader = client.do_get(info.endpoints[0].ticket)
    out = {"rows": 0, "last": None, "metadata": [], "marker_chunks": 0}
    while True:
        try:
            chunk = reader.read_chunk()
        except StopIteration:
            break
        rows = chunk.data.num_rows if chunk.data is not None else 0
        if rows > 0:
            out["rows"] += rows
            out["last"] = chunk.data.column(0)[-1].as_py()
        if chunk.app_metadata is not None:
            out["metadata"].append(json.loads(chunk.app_metadata.to_pybytes()))
            if rows == 0:
                out["marker_chunks"] += 1
    return out


def scenario_truncated(url, limit):
    """A result longer than the row limit ends with an empty batch that carries app_metadata."""
    limit = int(limit)
    client = flight.connect(url)
    long_sql = f"SELECT value FROM generate_series(1, {limit * 10}) AS t(value)"
    out = {
        "long": read_chunks(client, long_sql),
        "exact": read_chunks(client, f"SELECT value FROM generate_series(1, {limit}) AS t(value)"),
    }
    # Readers that take the whole stream see the empty batch as no rows.
    cmd = command("CommandStatementQuery", field_bytes(1, long_sql.encode()))
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd))
    out["read_all_rows"] = client.do_get(info.endpoints[0].ticket).read_all().num_rows
    with flightsql.connect(url) as conn, conn.cursor() as cur:
        try:
            cur.execute(long_sql)
            out["adbc"] = {"rows": cur.fetch_arrow_table().num_rows}
        except Exception as e:  # noqa: BLE001 - the type is what the test reports
            out["adbc"] = {"error": f"{type(e).__name__}: {e}"}
    return out


def scenario_failures(url, *statements):
    """Runs each statement through DoGet and reports the error it raises, or null."""
    client = flight.connect(url)
    out = {}
    for sql in statements:
        cmd = command("CommandStatementQuery", field_bytes(1, sql.encode()))
        try:
            info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd))
            client.do_get(info.endpoints[0].ticket).read_all()
            out[sql] = None
        except (flight.FlightError, pa.ArrowException) as e:
            out[sql] = {"error": type(e).__name__, "message": str(e)}
    return out


SCENARIOS = {
    "query": scenario_query,
    "stream": scenario_stream,
    "prepared": scenario_prepared,
    "metadata": scenario_metadata,
    "errors": scenario_errors,
    "cancel": scenario_cancel,
    "truncated": scenario_truncated,
    "failures": scenario_failures,
}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in SCENARIOS:
        sys.exit(f"usage: flight_sql.py {{{','.join(SCENARIOS)}}} grpc://HOST:PORT [ARGS...]")
    result = SCENARIOS[sys.argv[1]](sys.argv[2], *sys.argv[3:])
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
