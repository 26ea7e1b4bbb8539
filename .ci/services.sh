#!/usr/bin/env bash
# Installs what the test suite needs besides Python packages: the redis-server binary (the
# Redis inbox tests start their own server on a free port). A failed install is reported and
# left to the tests, which then fail loudly (CI sets WXPAY_REQUIRE_REDIS=1) instead of skipping.
set -uo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "services.sh: no redis-server and no apt-get; Redis inbox tests will fail" >&2
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
for attempt in 1 2 3; do
  if $SUDO apt-get update -qq >/dev/null \
     && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null; then
    exit 0
  fi
  echo "services.sh: installing redis-server failed (attempt $attempt)" >&2
  sleep $((attempt * 5))
done
echo "services.sh: could not install redis-server; Redis inbox tests will fail" >&2
exit 0
