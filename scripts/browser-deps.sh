#!/usr/bin/env bash
# `make test` runs this first: Debian's Chromium and a CJK font for the browser tests, installed
# when this machine allows it (root with apt-get, as .ci/run does). Otherwise it does nothing and the
# browser tests skip with one line saying how to get them (tests/browser/conftest.py); with CI=true
# they fail instead. Never `playwright install` (no browser downloads).
set -u
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
have_chromium() { [ -x "$chromium" ] || command -v "$chromium" >/dev/null 2>&1; }
have_font() { fc-list 2>/dev/null | grep -qiE 'wqy|WenQuanYi'; }

if have_chromium && have_font; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  exit 0
fi
echo "make test: installing chromium and fonts-wqy-zenhei for the browser tests (apt-get) …"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null; }; then
  echo "make test: apt-get could not install chromium fonts-wqy-zenhei; the browser tests will skip (fail with CI=true)" >&2
fi
exit 0
