#!/usr/bin/env bash
# A local Open Ahrefs cluster without Docker: PostgreSQL, a Kafka-API broker, one admin
# and two scraper processes, each a separate OS process joined only by Kafka.
#
#   scripts/local-cluster.sh crawl URL   start the cluster if needed, crawl URL to the end
#   scripts/local-cluster.sh up          start the cluster
#   scripts/local-cluster.sh status      show which processes run
#   scripts/local-cluster.sh down        stop everything this script started
#
# DATABASE_URL and KAFKA_BROKERS, when set, are used instead of local servers.
# OPEN_AHREFS_BROKER=tansu uses tansu instead of the in-memory mock broker.
# OPEN_AHREFS_PROFILE=debug runs the debug build, which builds faster and runs slower.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROFILE=${OPEN_AHREFS_PROFILE:-release}
case $PROFILE in
    release) BUILD_FLAGS=(--release) ;;
    debug) BUILD_FLAGS=() ;;
    *) die "OPEN_AHREFS_PROFILE must be 'release' or 'debug', got '$PROFILE'" ;;
esac
BIN=$ROOT/target/$PROFILE/open-ahrefs
SCRAPERS=${OPEN_AHREFS_SCRAPERS:-2}
ADMIN_PORT=${OPEN_AHREFS_ADMIN_PORT:-8000}
API=http://127.0.0.1:$ADMIN_PORT

is_running() {
    [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null
}

up() {
    if is_running admin; then
        log "the cluster is already running; admin API at $API"
        return
    fi
    log "building the $PROFILE binary"
    cargo build "${BUILD_FLAGS[@]}" --quiet --manifest-path "$ROOT/Cargo.toml"

    ensure_postgres open_ahrefs
    if [ -z "${KAFKA_BROKERS:-}" ] && [ "${OPEN_AHREFS_BROKER:-mock}" = mock ]; then
        # NOTE: librdkafka's mock broker keeps at most 5 MB per partition and drops older
        # messages even when no consumer has read them yet. Short leases hand out again the
        # URLs whose results it dropped, and a small per-site queue keeps the results in
        # flight few. tansu or Apache Kafka have no such limit.
        export LEASE_SECONDS=${LEASE_SECONDS:-120}
        export FRONTIER_MAX_IN_FLIGHT_PER_SITE=${FRONTIER_MAX_IN_FLIGHT_PER_SITE:-32}
    fi
    ensure_broker "$BIN"
    "$BIN" migrate

    # The local cluster is for crawling servers on this machine, which the scrapers
    # refuse by default; export ALLOW_PRIVATE_ADDRESSES=false to crawl only the internet.
    export ALLOW_PRIVATE_ADDRESSES=${ALLOW_PRIVATE_ADDRESSES:-true}
    start_process admin env ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" "$BIN" admin
    wait_for_port 127.0.0.1 "$ADMIN_PORT" "the admin API"
    for i in $(seq "$SCRAPERS"); do
        start_process "scraper-$i" env SCRAPER_METRICS_LISTEN="127.0.0.1:$((ADMIN_PORT + i))" "$BIN" scraper
    done
    log "cluster up: admin API at $API, $SCRAPERS scrapers, logs in $LOG_DIR"
}

down() {
    local names=()
    for pidfile in "$RUN_DIR"/scraper-*.pid; do
        [ -e "$pidfile" ] && names+=("$(basename "$pidfile" .pid)")
    done
    stop_process "${names[@]}" admin
    # Last, so that the others can still commit their offsets and leave their groups.
    stop_process broker
    stop_postgres
    log "cluster stopped"
}

status() {
    for pidfile in "$RUN_DIR"/*.pid; do
        [ -e "$pidfile" ] || continue
        local name
        name=$(basename "$pidfile" .pid)
        if is_running "$name"; then echo "$name: running (pid $(cat "$pidfile"))"; else echo "$name: stopped"; fi
    done
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    crawl)
        [ -n "${2:-}" ] || die "usage: $0 crawl URL"
        up
        "$BIN" crawl "$2" --api "$API"
        log "the cluster keeps running for the API at $API; stop it with: $0 down"
        ;;
    *) die "usage: $0 {crawl URL|up|status|down}" ;;
esac
