#!/usr/bin/env bash
# Back up datafix: a PostgreSQL dump plus the media and export files, into one dated directory.
#
#   deploy/backup.sh /srv/backups/datafix          # reads DATABASE_URL, MEDIA_ROOT, EXPORT_ROOT
#   KEEP_DAYS=30 deploy/backup.sh /srv/backups/datafix
#
# Restore: pg_restore --clean --if-exists -d "$DATABASE_URL" DIR/db.dump
#          tar -xzf DIR/media.tar.gz -C "$MEDIA_ROOT"; tar -xzf DIR/exports.tar.gz -C "$EXPORT_ROOT"
# Run from cron on the database or web machine, e.g. 30 2 * * * (after sourcing the env file).
set -euo pipefail
umask 077

dest_root=${1:?usage: backup.sh DEST_DIR}
: "${DATABASE_URL:?DATABASE_URL must be set (postgres://...)}"
media_root=${MEDIA_ROOT:-var/media}
export_root=${EXPORT_ROOT:-var/exports}
keep_days=${KEEP_DAYS:-14}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
dest="$dest_root/$stamp"
partial="$dest.partial"
mkdir -p "$partial"

# Custom format: compressed, restorable table by table; one consistent snapshot of the database.
pg_dump --format=custom --no-owner --file="$partial/db.dump" "$DATABASE_URL"
for pair in "media:$media_root" "exports:$export_root"; do
  name=${pair%%:*}
  dir=${pair#*:}
  if [ -d "$dir" ]; then
    tar -czf "$partial/$name.tar.gz" -C "$dir" .
  else
    echo "backup: $dir does not exist, skipping $name" >&2
  fi
done
(cd "$partial" && sha256sum -- * > SHA256SUMS)
# Only a complete backup gets its final name, so a half-written one is never mistaken for good.
mv "$partial" "$dest"
echo "backup written to $dest"

find "$dest_root" -mindepth 1 -maxdepth 1 -type d -name '20*Z' -mtime +"$keep_days" -exec rm -rf {} +
find "$dest_root" -mindepth 1 -maxdepth 1 -type d -name '*.partial' -mtime +1 -exec rm -rf {} +
