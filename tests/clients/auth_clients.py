"""Logs in to apitrail with stock drivers, run by tests/tests/auth.rs.

Usage: auth_clients.py SCENARIO ADDRESS [NAME SECRET]

ADDRESS is `grpc://127.0.0.1:PORT` for the Flight SQL scenarios and
`127.0.0.1:PORT` for the PostgreSQL ones. Each scenario asserts what it
expects and prints `ok SCENARIO`, so the calling Rust test fails with the
assertion message when a check fails.
"""

import sys

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import psycopg
import pyarrow.flight as flight
from psycopg import errors


def adbc_select_one(uri, **db_kwargs):
    with flightsql.connect(uri, db_kwargs=db_kwargs) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT 41 + 1 AS answer")
            row = cur.fetchone()
    assert row == (42,), f"SELECT 41 + 1 returned {row!r}"


def expect_adbc_failure(uri, expected_status, **db_kwargs):
    """Connects and queries; returns the error message, which must name `expected_status`."""
    try:
        adbc_select_one(uri, **db_kwargs)
    except adbc_driver_manager.Error as error:
        message = str(error)
        assert expected_status in message, f"expected {expected_status}, got: {message}"
        return message
    raise AssertionError(f"the query succeeded; expected {expected_status}")


def flight_bearer(uri, name, secret):
    adbc_select_one(
        uri,
        **{adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {secret}"},
    )


def flight_password(uri, name, secret):
    # The driver sends Basic credentials in a Handshake and keeps the
    # Bearer header the server returns for the calls that follow.
    adbc_select_one(uri, username=name, password=secret)


def flight_wrong_password(uri, name, secret):
    expect_adbc_failure(uri, "UNAUTHENTICATED", username=name, password=secret + "x")


def flight_anonymous_rejected(uri, name=None, secret=None):
    expect_adbc_failure(uri, "UNAUTHENTICATED")


def flight_forbidden(uri, name, secret):
    expect_adbc_failure(
        uri,
        "PermissionDenied",
        **{adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {secret}"},
    )


def pyarrow_basic_token(uri, name, secret):
    client = flight.FlightClient(uri)
    header, value = client.authenticate_basic_token(name, secret)
    assert header == b"authorization", f"handshake returned the header {header!r}"
    assert value == f"Bearer {secret}".encode(), "handshake returned another bearer value"
    options = flight.FlightCallOptions(headers=[(header, value)])
    actions = list(client.list_actions(options))
    assert actions, "list_actions with the bearer header returned nothing"
    try:
        list(client.list_actions())
    except flight.FlightUnauthenticatedError:
        pass
    else:
        raise AssertionError("list_actions without a header succeeded")


def pg_connect(address, user, password, **kwargs):
    host, port = address.rsplit(":", 1)
    return psycopg.connect(
        host=host,
        port=int(port),
        user=user,
        password=password,
        dbname="apitrail",
        connect_timeout=10,
        autocommit=True,
        **kwargs,
    )


def pg_scram(address, name, secret):
    # require_auth makes libpq (16 and later, bundled with psycopg[binary])
    # refuse any other method, so a success proves the server used SCRAM.
    with pg_connect(address, name, secret, sslmode="disable", require_auth="scram-sha-256") as conn:
        row = conn.execute("SELECT 41 + 1").fetchone()
        assert row == (42,), f"SELECT 41 + 1 returned {row!r}"
        user = conn.info.parameter_status("session_authorization")
        assert user == name, f"session_authorization is {user!r}, expected {name!r}"


def pg_wrong_password(address, name, secret):
    try:
        pg_connect(address, name, secret + "x", sslmode="disable")
    except psycopg.OperationalError as error:
        message = str(error)
        assert "password authentication failed" in message, message
        sqlstate = getattr(error, "sqlstate", None)
        assert sqlstate in (None, "28P01"), f"SQLSTATE {sqlstate}"
        return
    raise AssertionError("a wrong password logged in")


def pg_forbidden(address, name, secret):
    try:
        pg_connect(address, name, secret, sslmode="disable")
    except psycopg.OperationalError as error:
        message = str(error)
        assert "lacks the read role" in message, message
        return
    raise AssertionError("a token without the read role logged in")


def pg_cleartext_over_tls(address, name, secret, root_cert):
    with pg_connect(
        address,
        name,
        secret,
        sslmode="verify-full",
        sslrootcert=root_cert,
        require_auth="password",
    ) as conn:
        row = conn.execute("SELECT 1").fetchone()
        assert row == (1,), f"SELECT 1 returned {row!r}"
        assert conn.info.pgconn.ssl_in_use, "the connection does not use TLS"


def pg_scram_without_tls(address, name, secret):
    # With the cleartext method configured, a connection without TLS must
    # still use SCRAM: refusing SCRAM in the client must fail the login.
    try:
        pg_connect(address, name, secret, sslmode="disable", require_auth="password")
    except psycopg.OperationalError as error:
        message = str(error)
        assert "SASL" in message or "server requested" in message, message
    else:
        raise AssertionError("the server asked for a clear-text password without TLS")
    pg_scram(address, name, secret)


SCENARIOS = {
    "flight_bearer": flight_bearer,
    "flight_password": flight_password,
    "flight_wrong_password": flight_wrong_password,
    "flight_anonymous_rejected": flight_anonymous_rejected,
    "flight_forbidden": flight_forbidden,
    "pyarrow_basic_token": pyarrow_basic_token,
    "pg_scram": pg_scram,
    "pg_wrong_password": pg_wrong_password,
    "pg_forbidden": pg_forbidden,
    "pg_cleartext_over_tls": pg_cleartext_over_tls,
    "pg_scram_without_tls": pg_scram_without_tls,
}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in SCENARIOS:
        sys.exit(f"usage: auth_clients.py {{{'|'.join(SCENARIOS)}}} ADDRESS [NAME SECRET [ROOT_CERT]]")
    SCENARIOS[sys.argv[1]](*sys.argv[2:])
    print(f"ok {sys.argv[1]}")


if __name__ == "__main__":
    main()
