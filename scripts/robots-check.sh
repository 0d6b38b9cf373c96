#!/usr/bin/env bash
# Crawl the whole Rust documentation tree that rustup installs, served with its own
# robots.txt, and check with Python's urllib.robotparser (not the crawler's parser) that
# no URL the file disallows was fetched. Prints the counts and exits non-zero on a
# violation.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOCS=$(rustc --print sysroot)/share/doc/rust/html
PORT=${OPEN_AHREFS_DOCS_PORT:-18090}
ADMIN_PORT=${OPEN_AHREFS_ADMIN_PORT:-8000}
SEED=http://127.0.0.1:$PORT/index.html

[ -f "$DOCS/robots.txt" ] || die "no robots.txt in $DOCS"
start_process docs-server python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$DOCS"
trap 'stop_process docs-server' EXIT
wait_for_port 127.0.0.1 "$PORT" "the documentation server"

CRAWL_DELAY_MS=0 HOST_CONCURRENCY=${HOST_CONCURRENCY:-16} FRONTIER_MAX_IN_FLIGHT_PER_SITE=2000 \
    "$ROOT/scripts/local-cluster.sh" up
"$ROOT/target/release/open-ahrefs" crawl "$SEED" --api "http://127.0.0.1:$ADMIN_PORT" --interval 5 >"$LOG_DIR/robots-check-crawl.log"
tail -n 12 "$LOG_DIR/robots-check-crawl.log"

# The cluster's PostgreSQL is running; this only sets DATABASE_URL for it.
ensure_postgres open_ahrefs
site_id=$(psql "$DATABASE_URL" -tAc "SELECT id FROM sites WHERE host = '127.0.0.1:$PORT'")
psql "$DATABASE_URL" -tAc "SELECT u.url FROM urls u JOIN pages p ON p.url_id = u.id WHERE u.site_id = $site_id" \
    >"$LOG_DIR/robots-check-fetched.txt"
psql "$DATABASE_URL" -tAc "SELECT url FROM urls WHERE site_id = $site_id AND state_reason = 'robots_txt'" \
    >"$LOG_DIR/robots-check-blocked.txt"

python3 - "$DOCS/robots.txt" "$LOG_DIR/robots-check-fetched.txt" "$LOG_DIR/robots-check-blocked.txt" <<'PY'
import sys
from urllib.robotparser import RobotFileParser

parser = RobotFileParser()
with open(sys.argv[1]) as robots:
    parser.parse(robots.read().splitlines())
fetched = [line.strip() for line in open(sys.argv[2]) if line.strip()]
blocked = [line.strip() for line in open(sys.argv[3]) if line.strip()]
violations = [url for url in fetched if not parser.can_fetch("OpenAhrefsBot", url)]
wrongly_blocked = [url for url in blocked if parser.can_fetch("OpenAhrefsBot", url)]
print(f"fetched {len(fetched)} URLs, blocked {len(blocked)} by robots.txt")
print(f"fetched although disallowed: {len(violations)}")
print(f"blocked although allowed: {len(wrongly_blocked)}")
for url in (violations + wrongly_blocked)[:20]:
    print("  ", url)
sys.exit(1 if violations else 0)
PY
