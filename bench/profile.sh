#!/usr/bin/env bash
# Profile the admin and one scraper under callgrind during a crawl of the benchmark site,
# and PostgreSQL's statements with pg_stat_statements.
#
#   bench/profile.sh        crawl for PROFILE_SECONDS (240), then write the reports to
#                           $STATE_DIR/bench/profile/
#
# callgrind counts instructions, so its figures do not depend on the load that other
# processes put on the machine. It slows the profiled processes down so much (about 2
# pages per second were fetched here) that the crawl covers only part of the site. The broker is the one OPEN_AHREFS_BROKER chooses,
# and the ports are those of scripts/benchmark.sh and scripts/local-cluster.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

BIN=$ROOT/target/release/open-ahrefs
PROFILE_DIR=$STATE_DIR/bench/profile
DURATION=${PROFILE_SECONDS:-240}
ADMIN_PORT=${OPEN_AHREFS_ADMIN_PORT:-8000}
NGINX_PORT=${BENCH_NGINX_PORT:-18100}
SEED=http://127.0.0.1:$NGINX_PORT/book/index.html
DATABASE=open_ahrefs_profile

command -v valgrind >/dev/null 2>&1 || die "valgrind is missing; install Debian's valgrind package"
mkdir -p "$PROFILE_DIR"
rm -f "$PROFILE_DIR"/*.callgrind

"$ROOT/scripts/local-cluster.sh" down >/dev/null 2>&1 || true
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"

"$ROOT/scripts/benchmark.sh" serve >"$PROFILE_DIR/nginx.log" 2>&1 &
SERVE_PID=$!
wait_for_port 127.0.0.1 "$NGINX_PORT" nginx

# Stop a process with SIGTERM and wait up to 5 minutes for callgrind to write its output,
# because SIGKILL would lose the profile.
stop_profiled() {
    local name=$1 pid
    [ -f "$RUN_DIR/$name.pid" ] || return 0
    pid=$(cat "$RUN_DIR/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    rm -f "$RUN_DIR/$name.pid"
}

cleanup() {
    stop_profiled scraper-1
    stop_profiled admin
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    "$ROOT/scripts/local-cluster.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

unset DATABASE_URL KAFKA_BROKERS
ensure_postgres "$DATABASE"
data=$(cat "$RUN_DIR/pg.data")
pgbin=$(cat "$RUN_DIR/pg.bin")
if ! psql -d postgres -tAc "SHOW shared_preload_libraries" | grep -q pg_stat_statements; then
    log "loading pg_stat_statements into PostgreSQL (a restart)"
    psql -d postgres -qc "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >&2
    as_pg_owner "$pgbin/pg_ctl" -D "$data" -w -m fast -l "$data/server.log" restart >&2
fi
psql -d postgres -qc "DROP DATABASE IF EXISTS $DATABASE" >&2
psql -d postgres -qc "CREATE DATABASE $DATABASE" >&2
psql -d "$DATABASE" -qc "CREATE EXTENSION pg_stat_statements" >&2

ensure_broker "$BIN"
"$BIN" migrate

log "starting the admin and one scraper under callgrind"
start_process admin env ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" \
    valgrind --tool=callgrind --callgrind-out-file="$PROFILE_DIR/admin.callgrind" "$BIN" admin
start_process scraper-1 env SCRAPER_METRICS_LISTEN="127.0.0.1:$((ADMIN_PORT + 1))" \
    valgrind --tool=callgrind --callgrind-out-file="$PROFILE_DIR/scraper.callgrind" "$BIN" scraper
wait_for_port 127.0.0.1 "$ADMIN_PORT" "the admin API"
psql -d "$DATABASE" -qc "SELECT pg_stat_statements_reset()" >/dev/null

log "crawling $SEED for $DURATION s"
# The crawl client ignores SIGTERM, so `timeout` sends SIGKILL.
timeout -s KILL "$DURATION" "$BIN" crawl "$SEED" --api "http://127.0.0.1:$ADMIN_PORT" >"$PROFILE_DIR/crawl.log" 2>&1 || true
tail -n 1 "$PROFILE_DIR/crawl.log" | tr '\r' '\n' | tail -n 1 >&2

psql -d "$DATABASE" -c "
    SELECT calls, round(total_exec_time) AS total_ms, round(mean_exec_time::numeric, 2) AS mean_ms,
           rows, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    ORDER BY total_exec_time DESC LIMIT 15" >"$PROFILE_DIR/pg_stat_statements.txt"

stop_profiled scraper-1
stop_profiled admin
for role in admin scraper; do
    callgrind_annotate --inclusive=no "$PROFILE_DIR/$role.callgrind" >"$PROFILE_DIR/$role.self.txt" 2>&1
    callgrind_annotate --inclusive=yes "$PROFILE_DIR/$role.callgrind" >"$PROFILE_DIR/$role.inclusive.txt" 2>&1
done
log "reports in $PROFILE_DIR: *.self.txt, *.inclusive.txt, pg_stat_statements.txt"
