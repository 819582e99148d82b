"""Reads apitrail's events and views tables with DuckDB's delta extension
and with the deltalake package, and prints what each engine computes as JSON.

Usage: read_tables.py EVENTS_URI VIEWS_URI REQUEST_ID [REQUEST_ID ...]

The URIs are local paths, s3:// or az:// URLs. For s3:// the environment
gives the server and the credentials: S3_ENDPOINT (http://host:port),
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION. For az:// on
Azurite it gives AZURE_BLOB_ENDPOINT, the account URL in path style
(http://host:port/devstoreaccount1), and AZURE_STORAGE_ACCOUNT_KEY.

The extensions are loaded from the files that the PyPI packages
duckdb-extension-delta, duckdb-extension-httpfs and duckdb-extension-azure
ship, with unsigned extensions allowed and automatic installs off, so
nothing is downloaded.

Output: {"duckdb": RESULT, "deltalake": RESULT}, where RESULT has "days"
(events, bytes and status classes per day), "endpoints" (the views table's
`all` grain summed per endpoint) and "rows" (the events with the given
request ids).
"""

import json
import os
import pathlib
import sys
from urllib.parse import urlparse

import duckdb
import duckdb_extension_azure
import duckdb_extension_delta
import duckdb_extension_httpfs
from deltalake import DeltaTable

DAYS_SQL = """
SELECT CAST(day AS VARCHAR) AS day, count(*) AS events,
    sum(response_bytes) AS bytes_out,
    sum(CASE WHEN status >= 200 AND status < 300 THEN 1 ELSE 0 END) AS status_2xx,
    sum(CASE WHEN status >= 300 AND status < 400 THEN 1 ELSE 0 END) AS status_3xx,
    sum(CASE WHEN status >= 400 AND status < 500 THEN 1 ELSE 0 END) AS status_4xx,
    sum(CASE WHEN status >= 500 THEN 1 ELSE 0 END) AS status_5xx
FROM {events} GROUP BY day ORDER BY day
"""

ENDPOINTS_SQL = """
SELECT host, method, endpoint, sum(calls) AS calls, sum(status_4xx) AS status_4xx,
    sum(status_5xx) AS status_5xx, sum(bytes_out) AS bytes_out
FROM {views} WHERE grain = 'all'
GROUP BY host, method, endpoint ORDER BY host, method, endpoint
"""

ROWS_SQL = """
SELECT request_id, method, path, status, response_bytes,
    epoch_us(time) AS time_us, CAST(day AS VARCHAR) AS day
FROM {events} WHERE request_id IN ({ids}) ORDER BY request_id
"""


def extension(package) -> str:
    """Path of the extension file that `package` ships for this DuckDB version."""
    root = pathlib.Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    files = sorted(root.glob("*.duckdb_extension"))
    if not files:
        sys.exit(f"no extension for DuckDB {duckdb.__version__} under {root}")
    return str(files[0])


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        config={
            "allow_unsigned_extensions": "true",
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
        }
    )
    con.execute(f"LOAD '{extension(duckdb_extension_httpfs)}'")
    con.execute(f"LOAD '{extension(duckdb_extension_azure)}'")
    con.execute(f"LOAD '{extension(duckdb_extension_delta)}'")
    endpoint = os.environ.get("S3_ENDPOINT")
    if endpoint:
        host = urlparse(endpoint).netloc
        con.execute(
            "CREATE SECRET store (TYPE s3, KEY_ID ?, SECRET ?, REGION ?, ENDPOINT ?, "
            "URL_STYLE 'path', USE_SSL false)",
            [
                os.environ["AWS_ACCESS_KEY_ID"],
                os.environ["AWS_SECRET_ACCESS_KEY"],
                os.environ["AWS_REGION"],
                host,
            ],
        )
    azure = os.environ.get("AZURE_BLOB_ENDPOINT")
    if azure:
        account = azure.rstrip("/").rsplit("/", 1)[-1]
        connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={account};"
            f"AccountKey={os.environ['AZURE_STORAGE_ACCOUNT_KEY']};BlobEndpoint={azure};"
        )
        con.execute("CREATE SECRET store (TYPE azure, CONNECTION_STRING ?)", [connection_string])
        # With this secret, the delta extension 1.5.5 sends its requests to
        # 127.0.0.1:10000, Azurite's default port, and not to BlobEndpoint.
        # The object_store crate inside it takes the emulator's address
        # from this variable instead.
        parsed = urlparse(azure)
        os.environ["AZURITE_BLOB_STORAGE_URL"] = f"{parsed.scheme}://{parsed.netloc}"
    return con


def rows(con, sql: str) -> list:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, [plain(v) for v in row])) for row in cursor.fetchall()]


def plain(value):
    """Turns DuckDB's HUGEINT sums and other numbers into JSON numbers."""
    if isinstance(value, (int, float, str)) or value is None:
        return value
    return int(value)


def queries(con, events: str, views: str, ids: str) -> dict:
    return {
        "days": rows(con, DAYS_SQL.format(events=events)),
        "endpoints": rows(con, ENDPOINTS_SQL.format(views=views)),
        "rows": rows(con, ROWS_SQL.format(events=events, ids=ids)),
    }


def deltalake_options() -> dict:
    azure = os.environ.get("AZURE_BLOB_ENDPOINT")
    if azure:
        return {
            "azure_storage_account_name": azure.rstrip("/").rsplit("/", 1)[-1],
            "azure_storage_account_key": os.environ["AZURE_STORAGE_ACCOUNT_KEY"],
            "azure_storage_endpoint": azure,
            "azure_allow_http": "true",
        }
    endpoint = os.environ.get("S3_ENDPOINT")
    if not endpoint:
        return {}
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": os.environ["AWS_REGION"],
        "AWS_ALLOW_HTTP": "true",
    }


def main() -> None:
    events_uri, views_uri, *request_ids = sys.argv[1:]
    ids = ", ".join("'" + i.replace("'", "''") + "'" for i in request_ids)

    con = connect()
    with_duckdb = queries(
        con, f"delta_scan('{events_uri}')", f"delta_scan('{views_uri}')", ids
    )

    # deltalake reads the tables into Arrow; DuckDB only runs the same SQL
    # over those Arrow tables, so what is compared is what deltalake read.
    options = deltalake_options()
    events_arrow = DeltaTable(events_uri, storage_options=options).to_pyarrow_table()
    views_arrow = DeltaTable(views_uri, storage_options=options).to_pyarrow_table()
    plain_con = duckdb.connect()
    plain_con.register("events_arrow", events_arrow)
    plain_con.register("views_arrow", views_arrow)
    with_deltalake = queries(plain_con, "events_arrow", "views_arrow", ids)

    json.dump({"duckdb": with_duckdb, "deltalake": with_deltalake}, sys.stdout)


if __name__ == "__main__":
    main()
