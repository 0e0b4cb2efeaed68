#!/bin/sh
# The pull job, on every host (cron every minute, or the
# badguys-fleet-pull.timer): fetches the signed list with the system's own
# client (ftp(1) on OpenBSD, curl on Linux) into a temp file beside the
# destination and renames it into place. A failed fetch leaves the last
# copy where it was; badguys verifies the signature and the serial on
# every run (--include FILE --include-key KEY) and keeps the last good
# list in force if the new one is refused.
set -eu
url=${FLEET_URL:-https://collector.fleet.example/badguys/list.sig}
if [ -d /var/db ] && [ "$(uname)" = OpenBSD ]; then
	dest=${FLEET_LIST:-/var/db/badguys/fleet.list}
else
	dest=${FLEET_LIST:-/var/lib/badguys/fleet.list}
fi
mkdir -p "$(dirname "$dest")"
tmp=$(mktemp "$dest.XXXXXXXX")
trap 'rm -f "$tmp"' EXIT INT TERM
if [ "$(uname)" = OpenBSD ]; then
	ftp -M -V -w 30 -o "$tmp" "$url"
else
	curl --fail --silent --show-error --max-time 60 --proto =https -o "$tmp" "$url"
fi
chmod 644 "$tmp"
mv -f "$tmp" "$dest"
