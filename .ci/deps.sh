#!/bin/sh
# Installs the real HTTP clients the integration tests drive, when they are missing
# (headless Chromium and its chromedriver for the demo page's browser test).
# Tests never skip a client silently: without these they fail and say what is missing.
set -eu
missing=""
command -v curl    >/dev/null 2>&1 || missing="$missing curl"
command -v ab      >/dev/null 2>&1 || missing="$missing apache2-utils"
command -v wrk     >/dev/null 2>&1 || missing="$missing wrk"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
command -v chromium     >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
[ -z "$missing" ] && exit 0
echo "installing test clients:$missing"
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
  echo "cannot install$missing (not root, no sudo): install them and run make test again" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq $missing >/dev/null
