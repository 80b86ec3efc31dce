#!/usr/bin/env bash
# Installs valkey-server 8 from Debian bookworm-backports when it is missing. The tests start
# their own servers on loopback; the package's systemd unit is not used.
set -euo pipefail

if command -v valkey-server >/dev/null 2>&1; then
  valkey-server --version
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "valkey-server is missing and installing it needs root: sudo $0" >&2
  exit 1
fi
list=/etc/apt/sources.list.d/bookworm-backports.list
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main" >"$list"
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports valkey-server >/dev/null
valkey-server --version
