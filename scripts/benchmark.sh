#!/usr/bin/env bash
# Performance benchmark: Open Ahrefs against the spider crate and Scrapy on one real site.
#
#   scripts/benchmark.sh crawl   crawl the Rust documentation with each crawler in turn
#                                and print one table (the default)
#   scripts/benchmark.sh micro   run the criterion benchmarks of benches/ against a
#                                private PostgreSQL
#   scripts/benchmark.sh serve   serve the site with nginx until interrupted, for
#                                profiling one crawler by hand
#
# The site is the Rust documentation that rustup installs, served by nginx on
# 127.0.0.1:$BENCH_NGINX_PORT from its own configuration under $STATE_DIR/bench. Each
# crawler starts from book/index.html, ignores robots.txt and politeness delays, and runs
# at most $BENCH_TIMEOUT seconds. Settings, all environment variables:
#
#   SCRAPER_CONCURRENCY, DB_BATCH_SIZE, FRONTIER_MAX_IN_FLIGHT   Open Ahrefs' own settings
#   OPEN_AHREFS_SCRAPERS        scraper processes (2)
#   BENCH_BROKERS               the brokers Open Ahrefs runs with, one crawl each, the
#                               first being the reference of the table: "mock",
#                               "tansu" or "external" (KAFKA_BROKERS). The default is
#                               "external" when KAFKA_BROKERS is set, else
#                               OPEN_AHREFS_BROKER or "mock"
#   BENCH_CRAWLERS              which crawlers run ("ours spider scrapy")
#   BENCH_NGINX_PORT            nginx port (18100)
#   BENCH_TIMEOUT               seconds each crawl may take (1800)
#   BENCH_PAGE_TOLERANCE        fraction of our page count that another crawler may miss
#                               before it is marked misconfigured (0.001)
#   OPEN_AHREFS_STATE_DIR, OPEN_AHREFS_PG_PORT, OPEN_AHREFS_ADMIN_PORT,
#   OPEN_AHREFS_TANSU_PORT      as for scripts/local-cluster.sh
#
# The other crawlers get the same total concurrency as Open Ahrefs' scrapers together:
# SCRAPER_CONCURRENCY times OPEN_AHREFS_SCRAPERS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_DIR=$STATE_DIR/bench
NGINX_PORT=${BENCH_NGINX_PORT:-18100}
ADMIN_PORT=${OPEN_AHREFS_ADMIN_PORT:-8000}
SCRAPERS=${OPEN_AHREFS_SCRAPERS:-2}
TIMEOUT=${BENCH_TIMEOUT:-1800}
CRAWLERS=${BENCH_CRAWLERS:-ours spider scrapy}
# A KAFKA_BROKERS given by the caller is the broker "external".
EXTERNAL_KAFKA=${KAFKA_BROKERS:-}
if [ -n "$EXTERNAL_KAFKA" ]; then
    BROKERS=${BENCH_BROKERS:-external}
else
    BROKERS=${BENCH_BROKERS:-${OPEN_AHREFS_BROKER:-mock}}
fi
SCRAPY_VERSION=2.19.0
export SCRAPER_CONCURRENCY=${SCRAPER_CONCURRENCY:-64}
export DB_BATCH_SIZE=${DB_BATCH_SIZE:-500}
export FRONTIER_MAX_IN_FLIGHT=${FRONTIER_MAX_IN_FLIGHT:-2000}
# Politeness off, as for the other crawlers: no delay between two requests to the host,
# robots.txt not read, and the whole window of URLs in flight open to the one site.
export CRAWL_DELAY_MS=0 RESPECT_ROBOTS=false
export HOST_CONCURRENCY=$SCRAPER_CONCURRENCY
export FRONTIER_MAX_IN_FLIGHT_PER_SITE=$FRONTIER_MAX_IN_FLIGHT
# No depth limit, as for spider: the unstable book's pages link only to the previous and
# the next page, and two of them are at depth 101, beyond the default MAX_DEPTH of 100.
export MAX_DEPTH=100000
CONCURRENCY=$((SCRAPER_CONCURRENCY * SCRAPERS))
BENCH_DATABASE=open_ahrefs_bench
CLOCK_TICKS=$(getconf CLK_TCK)

DOCS=$(rustc --print sysroot)/share/doc/rust/html
SEED=http://127.0.0.1:$NGINX_PORT/book/index.html
RESULTS=$BENCH_DIR/results.jsonl

mkdir -p "$BENCH_DIR"

# --- nginx -------------------------------------------------------------------------------

ensure_nginx() {
    command -v nginx >/dev/null 2>&1 && return 0
    [ "$(id -u)" = 0 ] || die "nginx is not installed; install Debian's nginx package"
    log "installing nginx (Debian package nginx)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >&2
}

# Serve $DOCS on 127.0.0.1:$NGINX_PORT with nginx in the foreground, as a child of this
# script, with its own configuration and no access log.
start_nginx() {
    ensure_nginx
    [ -f "$DOCS/book/index.html" ] || die "$DOCS/book/index.html is missing; install the rust-docs component with 'rustup component add rust-docs'"
    local prefix=$BENCH_DIR/nginx
    mkdir -p "$prefix/logs" "$prefix/temp"
    # nginx's worker processes drop to the user `nobody`, who cannot read a toolchain
    # installed under /root, so as root they stay root.
    local user_line=""
    [ "$(id -u)" = 0 ] && user_line="user root;"
    cat >"$prefix/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $prefix/temp/client_body;
    proxy_temp_path $prefix/temp/proxy;
    fastcgi_temp_path $prefix/temp/fastcgi;
    uwsgi_temp_path $prefix/temp/uwsgi;
    scgi_temp_path $prefix/temp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $DOCS;
        location = /robots.txt { return 404; }
    }
}
EOF
    log "serving $DOCS with nginx on 127.0.0.1:$NGINX_PORT"
    nginx -p "$prefix" -c "$prefix/nginx.conf" -g 'daemon off;' >"$prefix/logs/stdout.log" 2>&1 &
    NGINX_PID=$!
    wait_for_port 127.0.0.1 "$NGINX_PORT" nginx
    curl -fsS -o /dev/null "$SEED" || die "nginx does not serve $SEED; see $prefix/logs/error.log"
}

stop_nginx() {
    if [ -n "${NGINX_PID:-}" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    NGINX_PID=""
}

# --- per-process CPU time and peak memory -------------------------------------------------

# Print the CPU seconds (user + system) a process has used and, for a parent, those of the
# children it has waited for, as "own children".
cpu_seconds() {
    # Drop "pid (comm) " first, because comm may contain spaces. Then utime and stime are
    # fields 12 and 13, and cutime and cstime are fields 14 and 15.
    sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$CLOCK_TICKS" '{ printf "%.2f %.2f\n", ($12 + $13) / hz, ($14 + $15) / hz }'
}

peak_rss_mb() {
    awk '/^VmHWM:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"
}

# Print "cpu_seconds peak_rss_mb processes" for the PostgreSQL server: the postmaster, its
# live children and the children it has already reaped. The peak is the largest of any
# one process, because every backend's RSS also counts the shared buffers it touched.
postgres_usage() {
    local data postmaster
    data=$(cat "$RUN_DIR/pg.data")
    postmaster=$(head -n 1 "$data/postmaster.pid")
    local total=0 peak=0 count=1 own reaped pid
    read -r own reaped < <(cpu_seconds "$postmaster")
    total=$(echo "$own + $reaped" | bc)
    peak=$(peak_rss_mb "$postmaster")
    for pid in $(pgrep -P "$postmaster"); do
        [ -r "/proc/$pid/stat" ] || continue
        read -r own reaped < <(cpu_seconds "$pid")
        total=$(echo "$total + $own" | bc)
        peak=$(printf '%s\n%s\n' "$peak" "$(peak_rss_mb "$pid")" | sort -g | tail -n 1)
        count=$((count + 1))
    done
    echo "$total $peak $count"
}

# Append one measured process to $RESULTS.
record() {
    local crawler=$1 process=$2 cpu rss=$4
    # bc writes 0.71 as .71, which is not a JSON number.
    cpu=$(printf '%.2f' "$3")
    shift 4
    printf '{"crawler": "%s", "process": "%s", "cpu_seconds": %s, "peak_rss_mb": %s%s}\n' \
        "$crawler" "$process" "$cpu" "$rss" "${1:+, $1}" >>"$RESULTS"
}

# Parse `/usr/bin/time -v` output into "cpu_seconds peak_rss_mb".
time_usage() {
    awk -F': ' '/User time/ { user = $2 } /System time/ { sys = $2 }
        /Maximum resident set size/ { rss = $2 }
        END { printf "%.2f %.1f\n", user + sys, rss / 1024 }' "$1"
}

now() { date +%s.%N; }

# Time a fixed loop of Python arithmetic, the fastest of three, just before a crawl. The
# machine is a shared virtual machine whose speed moves between runs: the same crawl has
# taken twice the CPU seconds 30 minutes later. Crawls are comparable only at
# similar probe times.
cpu_probe() {
    local best
    best=$(for _ in 1 2 3; do
        /usr/bin/time -f '%U' python3 -c 'sum(range(30_000_000))' 2>&1 >/dev/null
    done | sort -g | head -n 1)
    echo "probe:       $best CPU s for a fixed loop before the crawl of $1" >>"$BENCH_DIR/machine.txt"
}

# --- the crawlers -------------------------------------------------------------------------

# Crawl with the local cluster and the broker $1, recorded as the crawler "ours-$1".
run_ours() {
    local broker=$1 crawler=ours-$1
    log "Open Ahrefs: fresh database, release build, local cluster with the $broker broker"
    "$ROOT/scripts/local-cluster.sh" down >/dev/null 2>&1 || true
    unset DATABASE_URL KAFKA_BROKERS
    if [ "$broker" = external ]; then
        [ -n "$EXTERNAL_KAFKA" ] || die "the broker 'external' needs KAFKA_BROKERS"
        export KAFKA_BROKERS=$EXTERNAL_KAFKA
    fi
    ensure_postgres "$BENCH_DATABASE"
    psql -d postgres -qc "DROP DATABASE IF EXISTS $BENCH_DATABASE" >&2
    psql -d postgres -qc "CREATE DATABASE $BENCH_DATABASE" >&2
    OPEN_AHREFS_BROKER=$broker OPEN_AHREFS_ADMIN_PORT=$ADMIN_PORT "$ROOT/scripts/local-cluster.sh" up

    # An external broker has no pid file here, so it is not measured.
    local processes=(admin) i
    [ -f "$RUN_DIR/broker.pid" ] && processes+=(broker)
    for i in $(seq "$SCRAPERS"); do processes+=("scraper-$i"); done
    declare -A cpu_before
    local name pid own reaped
    for name in "${processes[@]}"; do
        read -r own reaped < <(cpu_seconds "$(cat "$RUN_DIR/$name.pid")")
        cpu_before[$name]=$own
    done
    local pg_before
    pg_before=$(postgres_usage | cut -d' ' -f1)

    cpu_probe "$crawler"
    log "Open Ahrefs: crawling $SEED (SCRAPER_CONCURRENCY=$SCRAPER_CONCURRENCY x $SCRAPERS scrapers, DB_BATCH_SIZE=$DB_BATCH_SIZE, FRONTIER_MAX_IN_FLIGHT=$FRONTIER_MAX_IN_FLIGHT)"
    # The client polls the API once a second, its default. Each poll counts the site's
    # links in PostgreSQL, so that cost is part of PostgreSQL's CPU time below.
    local started finished status=0
    started=$(now)
    /usr/bin/time -v -o "$BENCH_DIR/$crawler-client.time" \
        "$ROOT/target/release/open-ahrefs" crawl "$SEED" --api "http://127.0.0.1:$ADMIN_PORT" \
        --timeout "$TIMEOUT" >"$BENCH_DIR/$crawler-crawl.log" 2>&1 || status=$?
    finished=$(now)
    [ "$status" = 0 ] || log "Open Ahrefs: the crawl client exited with status $status; see $BENCH_DIR/$crawler-crawl.log"

    for name in "${processes[@]}"; do
        pid=$(cat "$RUN_DIR/$name.pid")
        read -r own reaped < <(cpu_seconds "$pid")
        record "$crawler" "$name" "$(echo "$own - ${cpu_before[$name]}" | bc)" "$(peak_rss_mb "$pid")"
    done
    local pg_after pg_rss pg_count
    read -r pg_after pg_rss pg_count < <(postgres_usage)
    record "$crawler" "postgres ($pg_count processes)" "$(echo "$pg_after - $pg_before" | bc)" "$pg_rss"
    local client_cpu client_rss
    read -r client_cpu client_rss < <(time_usage "$BENCH_DIR/$crawler-client.time")
    record "$crawler" "crawl client" "$client_cpu" "$client_rss"

    # The stored rows, counted in PostgreSQL itself rather than through the API.
    local pages links api
    # The site's sitemap.xml is fetched too (kind 'sitemap'); like the API, count pages only.
    pages=$(psql -d "$BENCH_DATABASE" -tAc "SELECT count(*) FROM pages JOIN urls ON urls.id = pages.url_id WHERE urls.kind = 'page'")
    links=$(psql -d "$BENCH_DATABASE" -tAc "SELECT count(*) FROM links")
    api=$(curl -fsS "http://127.0.0.1:$ADMIN_PORT/api/v1/sites/1" || echo '{}')
    # Keep the admin's log, because the next `up` overwrites it.
    cp "$LOG_DIR/admin.log" "$BENCH_DIR/$crawler-admin.log"
    printf '{"crawler": "%s", "summary": true, "pages": %s, "links": %s, "seconds": %s, "exit_status": %s, "api": %s}\n' \
        "$crawler" "$pages" "$links" "$(echo "$finished - $started" | bc)" "$status" "$api" >>"$RESULTS"

    "$ROOT/scripts/local-cluster.sh" down
}

run_spider() {
    log "spider: building bench/spider-crawl"
    cargo build --release --quiet --manifest-path "$ROOT/bench/spider-crawl/Cargo.toml"
    cpu_probe spider
    log "spider: crawling $SEED (concurrency $CONCURRENCY)"
    local status=0
    /usr/bin/time -v -o "$BENCH_DIR/spider.time" timeout -k 30 $((TIMEOUT + 60)) \
        "$ROOT/bench/spider-crawl/target/release/spider-crawl" "$SEED" "$CONCURRENCY" "$TIMEOUT" \
        >"$BENCH_DIR/spider.json" 2>"$BENCH_DIR/spider.log" || status=$?
    summarize_other spider "$status"
}

ensure_scrapy() {
    local venv=$BENCH_DIR/venv
    if ! "$venv/bin/scrapy" version 2>/dev/null | grep -q "$SCRAPY_VERSION"; then
        log "installing Scrapy $SCRAPY_VERSION into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet "scrapy==$SCRAPY_VERSION" >&2
    fi
}

run_scrapy() {
    ensure_scrapy
    cpu_probe scrapy
    log "Scrapy: crawling $SEED (concurrency $CONCURRENCY)"
    local status=0
    /usr/bin/time -v -o "$BENCH_DIR/scrapy.time" timeout -k 30 $((TIMEOUT + 60)) \
        "$BENCH_DIR/venv/bin/python" "$ROOT/bench/scrapy_crawl.py" "$SEED" "$CONCURRENCY" "$TIMEOUT" \
        >"$BENCH_DIR/scrapy.json" 2>"$BENCH_DIR/scrapy.log" || status=$?
    summarize_other scrapy "$status"
}

# Record the one process and the crawl summary of spider or Scrapy.
summarize_other() {
    local crawler=$1 status=$2 cpu rss
    read -r cpu rss < <(time_usage "$BENCH_DIR/$crawler.time")
    record "$crawler" "$crawler" "$cpu" "$rss"
    local summary
    summary=$(tail -n 1 "$BENCH_DIR/$crawler.json")
    if [ -z "$summary" ]; then
        log "$crawler printed no summary (exit status $status); see $BENCH_DIR/$crawler.log"
        summary="{\"crawler\": \"$crawler\", \"pages\": 0, \"links_extracted\": 0, \"seconds\": 0}"
    fi
    echo "$summary" | python3 -c 'import json, sys; s = json.load(sys.stdin); s.update(summary=True, exit_status=int(sys.argv[1])); print(json.dumps(s))' "$status" >>"$RESULTS"
}

# --- the report ---------------------------------------------------------------------------

describe_machine() {
    echo "date:        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "os:          Debian $(cat /etc/debian_version), Linux $(uname -r)"
    echo "cpu:         $(grep -m 1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), nproc $(nproc)"
    echo "memory:      $(free -h | awk '/^Mem:/ { print $2 " total, " $7 " available" }')"
    echo "load:        $(uptime | sed 's/.*load average/load average/')"
    echo "rustc:       $(rustc --version)"
    echo "nginx:       $(nginx -v 2>&1 | cut -d/ -f2)"
    echo "spider:      $(grep -A1 '^name = "spider"$' "$ROOT/bench/spider-crawl/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')"
    echo "scrapy:      $SCRAPY_VERSION on $(python3 --version)"
    echo "postgresql:  $("$(cat "$RUN_DIR/pg.bin" 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/postgres" --version)"
    echo "brokers:     $BROKERS${EXTERNAL_KAFKA:+ (external: KAFKA_BROKERS=$EXTERNAL_KAFKA)}"
    case " $BROKERS " in
        *" tansu "*)
            # The binary that ensure_tansu in scripts/lib.sh installs and the cluster runs.
            local tansu=${OPEN_AHREFS_TANSU_ROOT:-$HOME/.cache/open-ahrefs/tansu-$TANSU_VERSION-libsql}/bin/tansu
            if [ -x "$tansu" ]; then
                echo "tansu:       $("$tansu" --version 2>&1 | head -n 1)"
            else
                echo "tansu:       $TANSU_VERSION, installed by this run before its first crawl"
            fi ;;
    esac
    echo "settings:    SCRAPER_CONCURRENCY=$SCRAPER_CONCURRENCY OPEN_AHREFS_SCRAPERS=$SCRAPERS DB_BATCH_SIZE=$DB_BATCH_SIZE FRONTIER_MAX_IN_FLIGHT(_PER_SITE)=$FRONTIER_MAX_IN_FLIGHT CRAWL_DELAY_MS=0 HOST_CONCURRENCY=$HOST_CONCURRENCY RESPECT_ROBOTS=false MAX_DEPTH=$MAX_DEPTH, others at concurrency $CONCURRENCY"
}

cleanup() {
    stop_nginx
    "$ROOT/scripts/local-cluster.sh" down >/dev/null 2>&1 || true
}

crawl_all() {
    command -v bc >/dev/null 2>&1 || die "bc is missing; install Debian's bc package"
    : >"$RESULTS"
    trap cleanup EXIT
    start_nginx
    {
        describe_machine
        echo "site:        $SEED ($DOCS)"
    } >"$BENCH_DIR/machine.txt"
    local crawler
    for crawler in $CRAWLERS; do
        case $crawler in
            ours) for broker in $BROKERS; do run_ours "$broker"; done ;;
            spider) run_spider ;;
            scrapy) run_scrapy ;;
            *) die "unknown crawler '$crawler' in BENCH_CRAWLERS; expected ours, spider or scrapy" ;;
        esac
    done
    echo "load after:  $(uptime | sed 's/.*load average/load average/')" >>"$BENCH_DIR/machine.txt"
    cat "$BENCH_DIR/machine.txt"
    echo
    python3 "$ROOT/bench/benchmark_table.py" "$RESULTS" --tolerance "${BENCH_PAGE_TOLERANCE:-0.001}" \
        | tee "$BENCH_DIR/table.txt"
    echo
    print_progress | tee -a "$BENCH_DIR/table.txt"
}

# Print when each Open Ahrefs crawl reached 10, 50, 90, 99 and 100 % of its pages, from
# the crawl client's progress lines, to tell the bulk of the crawl from its tail.
print_progress() {
    case " $CRAWLERS " in *" ours "*) ;; *) return 0 ;; esac
    local broker log crawler total
    for broker in $BROKERS; do
        crawler=ours-$broker
        log=$BENCH_DIR/$crawler-crawl.log
        [ -e "$log" ] || continue
        total=$(awk '$1 == "pages" && $2 == "fetched" { print $3 }' "$log")
        [ -n "$total" ] || continue
        awk -v total="$total" -v crawler="$crawler" '
            # A progress line: [bar]  <seconds>s  fetched <count>  frontier ...
            /^\[/ && $3 == "fetched" {
                seconds = $2; sub(/s$/, "", seconds)
                for (i = 1; i <= 5; i++) {
                    if (!(i in reached) && $4 >= total * share[i]) { reached[i] = seconds }
                }
            }
            BEGIN { split("0.1 0.5 0.9 0.99 1", share, " ") }
            END {
                printf "%s reached 10%% of its pages at %ss, 50%% at %ss, 90%% at %ss, 99%% at %ss, 100%% at %ss\n",
                    crawler, reached[1], reached[2], reached[3], reached[4], reached[5]
            }' "$log"
    done
}

micro() {
    # Stop the server this run started, as the crawl stops its cluster. A server given by
    # DATABASE_URL is left alone.
    trap stop_postgres EXIT
    ensure_postgres open_ahrefs_microbench
    log "running the criterion benchmarks (DATABASE_URL=$DATABASE_URL)"
    cargo bench --manifest-path "$ROOT/Cargo.toml" --bench extract --bench url --bench db_write -- "$@"
}

serve() {
    trap stop_nginx EXIT
    start_nginx
    log "serving $SEED until interrupted"
    wait "$NGINX_PID"
}

case ${1:-crawl} in
    crawl) crawl_all ;;
    micro) shift; micro "$@" ;;
    serve) serve ;;
    *) die "usage: $0 [crawl|micro [CRITERION ARGS]|serve]" ;;
esac
