#!/usr/bin/env bash
# Run the browser tests of the web console. Headless Chromium (Debian's chromium package),
# driven by playwright-core, clicks through the console of a local cluster that crawls a
# small fixture site served by python3 on 127.0.0.1. Screenshots of each page go to
# target/browser-screenshots/.
#
# It installs what is missing (chromium with apt-get when run as root, the npm packages
# of tests/browser with npm ci), starts the cluster with scripts/local-cluster.sh up and
# the fixture site, runs the tests and stops everything it started.
#
# The cluster is private to these tests: it keeps its state in OPEN_AHREFS_STATE_DIR
# (default .local/browser), and DATABASE_URL and KAFKA_BROKERS are ignored, because the
# tests expect a cluster started with ADMIN_TOKEN and CRAWL_DELAY_MS=0. A cluster already
# running in that state directory is stopped at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export OPEN_AHREFS_STATE_DIR=${OPEN_AHREFS_STATE_DIR:-$ROOT/.local/browser}
export OPEN_AHREFS_PG_PORT=${OPEN_AHREFS_PG_PORT:-55450}
export OPEN_AHREFS_ADMIN_PORT=${OPEN_AHREFS_ADMIN_PORT:-8200}
source "$ROOT/scripts/lib.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
TESTS=$ROOT/tests/browser

install_chromium() {
    [ -x "$CHROMIUM" ] && return 0
    [ "$(id -u)" = 0 ] || die "$CHROMIUM is missing; install Debian's chromium package or set CHROMIUM"
    log "installing Chromium (Debian package chromium)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
}

install_node_packages() {
    command -v npm >/dev/null || die "npm is missing; install Node.js 20 or later with npm"
    if [ ! -d "$TESTS/node_modules/playwright-core" ]; then
        log "installing the npm packages of tests/browser (npm ci)"
        (cd "$TESTS" && npm ci --no-audit --no-fund >&2)
    fi
}

cleanup() {
    stop_process fixture
    "$ROOT/scripts/local-cluster.sh" down || true
}

install_chromium
install_node_packages
command -v python3 >/dev/null || die "python3 is needed to serve the fixture site"

# The cluster's admin and scrapers read these when local-cluster.sh starts them.
unset DATABASE_URL KAFKA_BROKERS
export ADMIN_TOKEN=${ADMIN_TOKEN:-browser-test-$(python3 -c 'import secrets; print(secrets.token_hex(16))')}
export CRAWL_DELAY_MS=0

trap cleanup EXIT
"$ROOT/scripts/local-cluster.sh" up

# A new port on every run makes the fixture a new site, so each run watches a full crawl.
FIXTURE_DIR=$STATE_DIR/fixture-site
rm -rf "$FIXTURE_DIR"
mkdir -p "$FIXTURE_DIR"
node "$TESTS/fixture.mjs" "$FIXTURE_DIR"
FIXTURE_PORT=$(free_port)
start_process fixture python3 -m http.server "$FIXTURE_PORT" --bind 127.0.0.1 --directory "$FIXTURE_DIR"
wait_for_port 127.0.0.1 "$FIXTURE_PORT" "the fixture site"

log "running the browser tests against http://127.0.0.1:$OPEN_AHREFS_ADMIN_PORT"
(
    cd "$TESTS"
    CONSOLE_URL="http://127.0.0.1:$OPEN_AHREFS_ADMIN_PORT" \
        FIXTURE_URL="http://127.0.0.1:$FIXTURE_PORT/" \
        CHROMIUM="$CHROMIUM" \
        SCREENSHOT_DIR="$ROOT/target/browser-screenshots" \
        npm test
)
