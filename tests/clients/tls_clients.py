"""TLS client checks, run by tests/tests/tls.rs.

Usage:
  tls_clients.py psycopg HOST:PORT CA_FILE
  tls_clients.py flight grpc+tls://HOST:PORT CA_FILE

Each scenario connects with a stock driver that verifies the server's
certificate against CA_FILE. It asserts what it can check on its own and
prints one JSON document on stdout for the Rust test.
"""

import json
import sys

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import psycopg
import pyarrow.flight as flight

from flight_sql import command, field_bytes

COUNT_SQL = "SELECT count(*) AS n FROM events"


def scenario_psycopg(addr, ca_file):
    host, port = addr.rsplit(":", 1)
    base = f"host={host} port={port} user=apitrail dbname=apitrail connect_timeout=10"
    out = {}
    # verify-full checks the chain against CA_FILE and the host against the
    # certificate's names; for 127.0.0.1 that is the IP address SAN.
    with psycopg.connect(f"{base} sslmode=verify-full sslrootcert={ca_file}") as conn:
        out["tls_in_use"] = conn.pgconn.ssl_in_use
        out["count_tls"] = conn.execute(COUNT_SQL).fetchone()[0]
        # Extended protocol with a parameter, over the same TLS connection.
        out["param"] = conn.execute("SELECT %s::int + 1 AS v", (41,)).fetchone()[0]
    # libpq 17 and later can start TLS at once, without SSLRequest; the
    # server then requires the ALPN protocol "postgresql".
    direct = f"{base} sslmode=verify-full sslrootcert={ca_file} sslnegotiation=direct"
    with psycopg.connect(direct) as conn:
        out["direct_tls_in_use"] = conn.pgconn.ssl_in_use
        out["count_direct"] = conn.execute(COUNT_SQL).fetchone()[0]
    with psycopg.connect(f"{base} sslmode=disable") as conn:
        out["plain_tls_in_use"] = conn.pgconn.ssl_in_use
        out["count_plain"] = conn.execute(COUNT_SQL).fetchone()[0]
    try:
        with psycopg.connect(f"{base} sslmode=verify-full sslrootcert=system") as conn:
            out["untrusted"] = "connected"
    except psycopg.OperationalError as error:
        out["untrusted"] = str(error)
    return out


def scenario_flight(url, ca_file):
    with open(ca_file, encoding="utf-8") as f:
        ca_pem = f.read()
    out = {}
    option = adbc_driver_flightsql.DatabaseOptions.TLS_ROOT_CERTS.value
    assert option == "adbc.flight.sql.client_option.tls_root_certs", option
    with (
        flightsql.connect(url, db_kwargs={option: ca_pem}) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(COUNT_SQL)
        out["adbc_count"] = cur.fetchone()[0]
        cur.execute("SELECT ? + 1 AS v", parameters=(41,))
        out["adbc_param"] = cur.fetchone()[0]

    # Without the root certificate the driver rejects the self-signed chain.
    try:
        with flightsql.connect(url) as conn, conn.cursor() as cur:
            cur.execute(COUNT_SQL)
            cur.fetchone()
        out["adbc_untrusted"] = "connected"
    except adbc_driver_manager.Error as error:
        out["adbc_untrusted"] = str(error)

    # Plain gRPC to the TLS port fails in the handshake.
    plain_url = url.replace("grpc+tls://", "grpc://", 1)
    try:
        with flightsql.connect(plain_url) as conn, conn.cursor() as cur:
            cur.execute(COUNT_SQL)
            cur.fetchone()
        out["adbc_plain"] = "connected"
    except adbc_driver_manager.Error as error:
        out["adbc_plain"] = str(error)

    # The raw protocol: a CommandStatementQuery through GetFlightInfo and DoGet.
    client = flight.FlightClient(url, tls_root_certs=ca_pem.encode())
    query = command("CommandStatementQuery", field_bytes(1, COUNT_SQL.encode()))
    info = client.get_flight_info(flight.FlightDescriptor.for_command(query))
    table = client.do_get(info.endpoints[0].ticket).read_all()
    out["pyarrow_count"] = table.column(0)[0].as_py()
    client.close()
    return out


SCENARIOS = {
    "psycopg": scenario_psycopg,
    "flight": scenario_flight,
}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in SCENARIOS:
        sys.exit(f"usage: tls_clients.py {{{','.join(SCENARIOS)}}} ADDRESS CA_FILE")
    result = SCENARIOS[sys.argv[1]](sys.argv[2], sys.argv[3])
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
