#!/usr/bin/env bash
# Installs what the whole-server tests need besides the Rust toolchain:
# cargo-nextest, the psql client, the PostgreSQL JDBC driver, the openssl
# command that makes the TLS tests' certificates, a Python environment in
# tests/.venv with the Flight SQL and PostgreSQL drivers, and Azurite (the
# Azure Storage emulator) from npm in tests/node/.
# Running it again installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-nextest >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi

packages=()
command -v psql >/dev/null 2>&1 || packages+=(postgresql-client)
[ -f /usr/share/java/postgresql.jar ] || packages+=(libpostgresql-jdbc-java)
command -v java >/dev/null 2>&1 || packages+=(default-jdk-headless)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [ ${#packages[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${packages[@]}"
fi

if [ ! -x tests/.venv/bin/python ]; then
    python3 -m venv tests/.venv
fi
tests/.venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt

# Azurite at the version that tests/node/package-lock.json pins. npm ci
# replaces tests/node/node_modules whole, so it runs only when the
# installed version differs.
wanted=$(node -p "require('./tests/node/package-lock.json').packages['node_modules/azurite'].version")
installed=$(node -p "try { require('./tests/node/node_modules/azurite/package.json').version } catch { '' }")
if [ "$wanted" != "$installed" ]; then
    npm ci --prefix tests/node --no-audit --no-fund
fi
