#!/usr/bin/env bash
# Load-test the admin API's read endpoints with wrk on loopback while a crawl of the Rust
# book runs, print the latency percentiles and errors of each endpoint, and fail when any
# request failed (a socket error or a status other than 2xx).
#
#   scripts/load-test.sh            DURATION=15s CONNECTIONS=16 THREADS=2 by default
#   DURATION=4s scripts/load-test.sh  the short run of scripts/test.sh (about a minute)
#
# It starts the local cluster of scripts/local-cluster.sh (OPEN_AHREFS_PROFILE=debug uses
# the debug build, which is faster to build and slower to run) and stops it at the end.
# wrk comes from Debian's wrk package, installed when missing and running as root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
ADMIN_PORT=${OPEN_AHREFS_ADMIN_PORT:-8000}
API=http://127.0.0.1:$ADMIN_PORT
BOOK_PORT=${OPEN_AHREFS_BOOK_PORT:-18080}

if ! command -v wrk >/dev/null; then
    [ "$(id -u)" = 0 ] || die "wrk is not installed; install Debian's wrk package"
    log "installing wrk (Debian package wrk)"
    apt-get install -y -qq wrk >&2 || { apt-get update -qq >&2 && apt-get install -y -qq wrk >&2; }
fi

cleanup() {
    stop_process book-server
    "$ROOT/scripts/local-cluster.sh" down
}
trap cleanup EXIT

serve_rust_book "$BOOK_PORT"
"$ROOT/scripts/local-cluster.sh" up

# The default politeness (one request a second to a host) keeps the crawl of the book's
# 137 URLs going for about two minutes, which covers the whole load test.
# A site kept in the database from an earlier run is rejected with 409 and its id, and
# is crawled again.
created=$(curl -s -o "$RUN_DIR/load-test-site.json" -w '%{http_code}' -X POST "$API/api/v1/sites" \
    -H 'Content-Type: application/json' -d "{\"url\": \"http://127.0.0.1:$BOOK_PORT/index.html\"}") || true
case $created in
    201 | 409) ;;
    *) die "adding the book site failed with HTTP status $created: $(cat "$RUN_DIR/load-test-site.json" 2>/dev/null)" ;;
esac
site=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$RUN_DIR/load-test-site.json")
if [ "$created" = 409 ]; then
    curl -sf -o /dev/null -X POST "$API/api/v1/sites/$site/recrawl" || die "recrawling site $site failed"
fi
log "crawling site $site while the load test runs"
sleep 5

# Prints one summary line per run from wrk's own counters, so that errors are counted the
# same way for every endpoint.
report=$(mktemp)
cat >"$report" <<'LUA'
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout + summary.errors.status
  io.write(string.format("RESULT requests=%d rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f errors=%d non_2xx=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, errors, summary.errors.status))
end
LUA

endpoints=(
    "/api/v1/sites"
    "/api/v1/sites/$site"
    "/api/v1/pages?site_id=$site&limit=100"
    "/api/v1/urls?site_id=$site&limit=100"
    "/api/v1/backlinks?target=http://127.0.0.1:$BOOK_PORT/ch04-01-what-is-ownership.html"
    "/api/v1/redirects?url=http://127.0.0.1:$BOOK_PORT/index.html"
    "/api/openapi.json"
    "/healthz"
    "/readyz"
)

failed=0
printf '%-80s %s\n' endpoint "result (wrk -t$THREADS -c$CONNECTIONS -d$DURATION)"
for endpoint in "${endpoints[@]}"; do
    output=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$report" "$API$endpoint")
    result=$(grep '^RESULT' <<<"$output" | sed 's/^RESULT //')
    printf '%-80s %s\n' "$endpoint" "$result"
    errors=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$result")
    [ "${errors:-1}" = 0 ] || failed=1
done
rm -f "$report"

progress=$(curl -sf "$API/api/v1/sites/$site")
log "crawl progress at the end: $progress"
[ "$failed" = 0 ] || die "some requests failed"
log "no request failed"
