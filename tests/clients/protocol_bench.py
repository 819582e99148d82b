"""Query latency and result throughput of each protocol, with stock clients.

Usage: protocol_bench.py HTTP_URL FLIGHT_URL PG_HOST:PORT [--rows N] [--repeat R]

Runs against a server that is already running (build it with --release),
so the figures include the client, the protocol and the engine. Two queries:

- small: one row (`SELECT count(*) FROM events`), timed R times; reports
  the median and the 90th percentile latency.
- large: N rows of five columns from generate_series, so the result does
  not depend on the data in the store. It reports rows and bytes per
  second as the client received them, as the median of R runs.

Clients: urllib with the Arrow IPC stream and with JSON lines for HTTP,
the ADBC Flight SQL driver for Flight SQL, and psycopg 3 with binary results
for the PostgreSQL wire protocol.
"""

import argparse
import json
import statistics
import time
import urllib.request

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa

SMALL_SQL = "SELECT count(*) AS n FROM events"


def large_sql(rows):
    return (
        "SELECT v AS id, v * 2 AS twice, v % 1000 AS bucket, "
        "concat('/v1/orders/', CAST(v AS VARCHAR)) AS path, "
        "to_timestamp_micros(1700000000000000 + v) AS time "
        f"FROM generate_series(1, {rows}) AS t(v)"
    )


def http_query(base_url, sql, output):
    request = urllib.request.Request(
        f"{base_url}/api/v1/query?output={output}",
        data=json.dumps({"sql": sql}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        body = response.read()
    if output == "arrow":
        table = pa.ipc.open_stream(body).read_all()
        return table.num_rows, len(body)
    rows = sum(1 for line in body.splitlines() if line)
    return rows, len(body)


def flight_query(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        table = cur.fetch_arrow_table()
    return table.num_rows, table.nbytes


def pg_query(conn, sql):
    with conn.cursor(binary=True) as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    return len(rows), None


def timed(function, repeat):
    """Runs function repeat times; returns the seconds of each run and the last result."""
    seconds = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("http_url")
    parser.add_argument("flight_url")
    parser.add_argument("pg_addr")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large result")
    parser.add_argument("--repeat", type=int, default=20, help="runs of each query")
    args = parser.parse_args()

    import psycopg

    host, port = args.pg_addr.rsplit(":", 1)
    pg = psycopg.connect(host=host, port=int(port), user="apitrail", dbname="apitrail", autocommit=True)
    flight = flightsql.connect(args.flight_url)

    clients = {
        "HTTP (Arrow IPC)": lambda sql: http_query(args.http_url, sql, "arrow"),
        "HTTP (JSON lines)": lambda sql: http_query(args.http_url, sql, "jsonl"),
        "Flight SQL (ADBC)": lambda sql: flight_query(flight, sql),
        "PostgreSQL (psycopg, binary)": lambda sql: pg_query(pg, sql),
    }
    large = large_sql(args.rows)
    print(f"| Protocol | small: median ms | small: p90 ms | large: {args.rows:,} rows/s | large: MB/s |")
    print("|---|---|---|---|---|")
    for name, run in clients.items():
        run(SMALL_SQL)
        small, _ = timed(lambda: run(SMALL_SQL), args.repeat)
        small.sort()
        p90 = small[min(len(small) - 1, int(len(small) * 0.9))]
        big, (rows, size) = timed(lambda: run(large), max(3, args.repeat // 5))
        assert rows == args.rows, f"{name} returned {rows} rows, expected {args.rows}"
        median = statistics.median(big)
        rate = f"{size / median / 1e6:.1f}" if size else "n/a"
        print(
            f"| {name} | {statistics.median(small) * 1e3:.2f} | {p90 * 1e3:.2f} "
            f"| {rows / median:,.0f} | {rate} |"
        )
    flight.close()
    pg.close()


if __name__ == "__main__":
    main()
