"""Compares `apitrail import --data-dir` with DuckDB on the same API Gateway JSON file.

Usage:
    import_vs_duckdb.py --apitrail target/release/apitrail [--lines 1000000] [--workdir DIR]

Generates a file of API Gateway access-log records (JSON lines, the fields of
AWS's JSON preset plus API key, domain and latencies), seeded so every run
writes the same bytes. Then, one after the other on the same machine:

1. `apitrail import --data-dir` parses the file into events, writes them as
   zstd Parquet into the events table, and computes the continuous views.
2. DuckDB reads the same file with `read_json` and writes it sorted by time
   as zstd Parquet with `COPY ... TO`.

It prints the rows per second of each, their ratio, and the compressed
bytes of the columns that both outputs keep, read from the Parquet footers
(column chunk sizes), so the comparison covers the same information.
Nothing here is asserted; the figures go to docs/benchmarks.md.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone

import duckdb
import pyarrow.parquet as pq

# Columns both outputs keep: DuckDB's source key, apitrail's column.
SHARED_COLUMNS = [
    ("requestId", "request_id"),
    ("ip", "client_ip"),
    ("requestTimeEpoch", "time"),
    ("httpMethod", "method"),
    ("path", "path"),
    ("status", "status"),
    ("responseLength", "response_bytes"),
    ("responseLatency", "duration_ms"),
    ("userAgent", "user_agent"),
    ("apiKeyId", "consumer"),
    ("domainName", "host"),
]

RESOURCES = [
    "/v1/orders/{id}",
    "/v1/orders",
    "/v1/customers/{id}",
    "/v1/customers/{id}/invoices",
    "/v1/products/{id}",
    "/v1/products",
    "/v1/shipments/{id}/tracking",
    "/v2/catalog/items/{id}",
    "/v2/catalog/search",
    "/health",
]

USER_AGENTS = [
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "axios/1.7.2",
    "Apache-HttpClient/5.3.1 (Java/17.0.11)",
    "PartnerSync/3.4 (+https://partner.example/bot)",
]


def generate(path: str, lines: int, seed: int = 7) -> None:
    """Writes `lines` API Gateway JSON records to `path`."""
    rng = random.Random(seed)
    keys = [f"k{rng.getrandbits(40):010x}" for _ in range(300)]
    ips = [f"198.51.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(2000)]
    start = datetime(2024, 6, 1, tzinfo=timezone.utc)
    with open(path, "w", encoding="utf-8") as out:
        for n in range(lines):
            moment = start + timedelta(milliseconds=n * 37 + rng.randrange(30))
            resource = rng.choice(RESOURCES)
            concrete = resource.replace("{id}", str(rng.randrange(1, 5_000_000)))
            status = rng.choices([200, 201, 204, 400, 403, 404, 429, 500], [80, 5, 3, 4, 2, 4, 1, 1])[0]
            record = {
                "requestId": str(uuid.UUID(int=rng.getrandbits(128))),
                "ip": rng.choice(ips),
                "caller": "-",
                "user": "-",
                "requestTime": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(moment.timestamp() * 1000),
                "httpMethod": "POST" if resource.endswith("s") and rng.random() < 0.2 else "GET",
                "resourcePath": resource,
                "path": concrete,
                "status": str(status),
                "protocol": "HTTP/1.1",
                "responseLength": str(rng.randrange(50, 60_000)),
                "responseLatency": rng.randrange(3, 900),
                "integrationLatency": rng.randrange(1, 800),
                "userAgent": rng.choice(USER_AGENTS),
                "apiKeyId": rng.choice(keys),
                "domainName": "api.example.com" if rng.random() < 0.9 else "partners.example.com",
                "stage": "prod",
            }
            out.write(json.dumps(record, separators=(",", ":")))
            out.write("\n")


def parquet_column_bytes(files: list[str]) -> dict[str, int]:
    """Sums the compressed size of each top-level column over `files`."""
    sizes: dict[str, int] = {}
    for file in files:
        metadata = pq.ParquetFile(file).metadata
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for column in range(row_group.num_columns):
                chunk = row_group.column(column)
                name = chunk.path_in_schema.split(".")[0]
                sizes[name] = sizes.get(name, 0) + chunk.total_compressed_size
    return sizes


def parquet_files(directory: str) -> list[str]:
    found = []
    for root, _dirs, names in os.walk(directory):
        found.extend(os.path.join(root, name) for name in names if name.endswith(".parquet"))
    return sorted(found)


def run_apitrail(binary: str, data: str, work: str) -> tuple[float, dict[str, int], int]:
    data_dir = os.path.join(work, "apitrail-data")
    started = time.perf_counter()
    result = subprocess.run(
        [binary, "import", "--data-dir", data_dir, "--format", "aws_apigateway", data],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"apitrail import failed:\n{result.stdout}\n{result.stderr}")
    print(result.stdout.strip())
    files = parquet_files(os.path.join(data_dir, "table"))
    total = sum(os.path.getsize(f) for f in files)
    return elapsed, parquet_column_bytes(files), total


def run_duckdb(data: str, work: str) -> tuple[float, dict[str, int], int]:
    out = os.path.join(work, "duckdb.parquet")
    columns = ", ".join(source for source, _ in SHARED_COLUMNS)
    connection = duckdb.connect()
    started = time.perf_counter()
    connection.execute(
        f"COPY (SELECT {columns} FROM read_json('{data}', format = 'newline_delimited') "
        f"ORDER BY requestTimeEpoch) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
    )
    elapsed = time.perf_counter() - started
    threads = connection.execute("SELECT current_setting('threads')").fetchone()[0]
    print(f"duckdb {duckdb.__version__}, threads={threads}")
    return elapsed, parquet_column_bytes([out]), os.path.getsize(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apitrail", required=True, help="path of a release build of apitrail")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--workdir", help="directory for the files (default: a temporary one)")
    args = parser.parse_args()

    work = args.workdir or tempfile.mkdtemp(prefix="apitrail-vs-duckdb-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "apigateway.jsonl")
    generate(data, args.lines)
    size = os.path.getsize(data)
    print(f"input: {args.lines} lines, {size / 1e6:.1f} MB, {os.cpu_count()} cores")

    apitrail_s, apitrail_cols, apitrail_total = run_apitrail(args.apitrail, data, work)
    duckdb_s, duckdb_cols, duckdb_total = run_duckdb(data, work)

    print()
    print(f"{'':28}{'apitrail':>14}{'duckdb':>14}")
    print(f"{'seconds':28}{apitrail_s:>14.2f}{duckdb_s:>14.2f}")
    print(f"{'rows/s':28}{args.lines / apitrail_s:>14,.0f}{args.lines / duckdb_s:>14,.0f}")
    print(f"{'speed ratio (apitrail/duckdb)':28}{duckdb_s / apitrail_s:>14.2f}")
    print()
    print(f"{'column bytes':28}{'apitrail':>14}{'duckdb':>14}")
    shared_a = shared_d = 0
    for source, column in SHARED_COLUMNS:
        a = apitrail_cols.get(column, 0)
        d = duckdb_cols.get(source, 0)
        shared_a += a
        shared_d += d
        print(f"{column + ' / ' + source:28}{a:>14,}{d:>14,}")
    print(f"{'shared columns':28}{shared_a:>14,}{shared_d:>14,}")
    print(f"{'size ratio (apitrail/duckdb)':28}{shared_a / shared_d:>14.2f}")
    print(f"{'whole output files':28}{apitrail_total:>14,}{duckdb_total:>14,}")
    if not args.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
