#!/usr/bin/env bash
# Installs the Debian packages HomeCall needs when missing: the Mosquitto broker and clients,
# what builds the broker policy plugin (gcc, libc and Mosquitto's plugin headers), and
# PostgreSQL (central's store is tested on it), and Chromium (the desk's browser tests).
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_passwd >/dev/null 2>&1 || missing+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
# PostgreSQL: central's tests run its store on SQLite and on PostgreSQL (a private server
# each run, started from Debian's binaries; the package's own cluster is not used).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
[ -f /usr/include/stdlib.h ] || missing+=(libc6-dev)
[ -f /usr/include/mosquitto_plugin.h ] || missing+=(mosquitto-dev)
[ -f /usr/include/mosquitto.h ] || missing+=(libmosquitto-dev)
# Chromium: the desk's browser tests drive Debian's chromium with Playwright (Playwright's
# own browser download is not used).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
# de-duplicate
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=sudo
    else
        echo "HomeCall needs these Debian packages: $pkgs" >&2
        echo "Run as root, or: sudo apt-get install -y $pkgs" >&2
        exit 1
    fi
else
    SUDO=
fi
echo "Installing Debian packages: $pkgs"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs
