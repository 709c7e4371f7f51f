#!/bin/sh
# Installs the real HTTP clients the integration tests drive (and Python's websockets), nginx (tests/scale.rs), Prometheus (tests/metrics.rs),
# headless Chromium and chromedriver (tests/inspect.rs, tests/demo_page.rs) and the PostgreSQL
# server tests/db.rs starts, when they are missing. Tests never skip a missing part silently:
# without these they fail and say what is missing.
set -eu
missing=""
command -v curl    >/dev/null 2>&1 || missing="$missing curl"
command -v ab      >/dev/null 2>&1 || missing="$missing apache2-utils"
command -v wrk     >/dev/null 2>&1 || missing="$missing wrk"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
# tests/tls.rs makes its CA and certificate with the openssl command.
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
# tests/scale.rs puts three demo instances behind a real nginx.
{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || missing="$missing nginx"
# Debian's `prometheus` package installs both the server and `promtool` (tests/metrics.rs).
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || missing="$missing prometheus"
# Debian's server binaries (initdb, postgres) live under /usr/lib/postgresql/<version>/bin.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
# tests/websocket.rs and tests/tls.rs drive WebSockets with Python's `websockets` package
# (PyPI), installed once python3 is there (after the apt-get step below, if it was missing).
websockets() {
  python3 -c "import websockets" 2>/dev/null && return 0
  echo "installing the python3 websockets package"
  python3 -m pip install -q websockets 2>/dev/null \
    || python3 -m pip install -q --break-system-packages websockets 2>/dev/null \
    || { [ "$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq python3-websockets >/dev/null; } \
    || { echo "cannot install the python3 websockets package" >&2; exit 1; }
}
# tests/footprint.rs builds the engine-only hello twice more: with nightly's -Zbuild-std
# (std without its backtrace symbolizer: the rust-src component) and for the static musl
# target. rustup fetches them when missing.
toolchain_parts() {
  command -v rustup >/dev/null 2>&1 || { echo "no rustup: tests/footprint.rs needs nightly with rust-src and the musl target" >&2; return 0; }
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  rustup component list --toolchain nightly --installed | grep -q '^rust-src' \
    || rustup component add rust-src --toolchain nightly
  musl="$(uname -m)-unknown-linux-musl"
  rustup target list --installed | grep -qx "$musl" || rustup target add "$musl"
}
toolchain_parts
[ -z "$missing" ] && { websockets; exit 0; }
echo "installing test clients:$missing"
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
  echo "cannot install$missing (not root, no sudo): install them and run make test again" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq $missing >/dev/null
websockets
