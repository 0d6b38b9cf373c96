#!/usr/bin/env bash
# Run the whole test suite, starting what it needs: a private PostgreSQL (unless
# DATABASE_URL is set), the in-memory development broker, then tansu for a second run of
# the end-to-end tests on a broker that is not librdkafka's own (unless KAFKA_BROKERS is
# set, in which case only that broker is used). A whole-suite run ends with short runs of
# scripts/load-test.sh and scripts/api-fuzz.sh against the admin API, and the browser
# tests.
#
# Extra arguments go to `cargo test`, e.g. scripts/test.sh --test pipeline; with them
# the tests run on the development broker only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/check-deploy.sh"

command -v python3 >/dev/null || die "python3 is needed for the independent counts of the tests"

cleanup() {
    stop_process broker
    stop_postgres
}
trap cleanup EXIT

# Create an empty database named $1 on the server of DATABASE_URL and print its URL.
fresh_database_url() {
    psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $1" -qc "CREATE DATABASE $1" >&2
    python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
        "$DATABASE_URL" "$1"
}

# Run scripts/load-test.sh and scripts/api-fuzz.sh in their short mode, each with a cluster
# of its own (state under $STATE_DIR/<name>) on a new database of the suite's PostgreSQL.
# Either fails the suite on a failed request or a schemathesis failure.
run_api_checks() {
    local admin_port=${OPEN_AHREFS_ADMIN_PORT:-$(free_port)}
    local book_port=${OPEN_AHREFS_BOOK_PORT:-$(free_port)}
    local name database_url
    for name in load-test api-fuzz; do
        log "running scripts/$name.sh (short mode)"
        database_url=$(fresh_database_url "open_ahrefs_${name//-/_}")
        DATABASE_URL=$database_url \
        KAFKA_BROKERS=$user_brokers \
        OPEN_AHREFS_STATE_DIR=$STATE_DIR/$name \
        OPEN_AHREFS_PROFILE=debug \
        OPEN_AHREFS_ADMIN_PORT=$admin_port \
        OPEN_AHREFS_BOOK_PORT=$book_port \
        TOPIC_URL=${name//-/_}_url TOPIC_RES=${name//-/_}_res KAFKA_GROUP_PREFIX=open-ahrefs-$name \
        DURATION=4s MAX_EXAMPLES=20 \
            "$ROOT/scripts/$name.sh"
    done
}

export OPEN_AHREFS_PG_DURABLE=0
# tests/faults.rs stops and starts the PostgreSQL server found under this folder.
export OPEN_AHREFS_STATE_DIR=$STATE_DIR
user_brokers=${KAFKA_BROKERS:-}
ensure_postgres open_ahrefs_test

log "building"
cargo build --tests --quiet
cargo build --quiet

ensure_broker "$ROOT/target/debug/open-ahrefs"
log "running the test suite against ${OPEN_AHREFS_BROKER:-mock} ($KAFKA_BROKERS)"
cargo test "$@" -- --test-threads 2

# The second run on tansu, the API checks and the browser tests belong to the whole suite,
# so a run of chosen tests (arguments given) ends here.
[ $# -eq 0 ] || exit 0
if [ -z "$user_brokers" ] && [ "${OPEN_AHREFS_BROKER:-mock}" = mock ]; then
    stop_process broker
    unset KAFKA_BROKERS
    OPEN_AHREFS_BROKER=tansu ensure_broker "$ROOT/target/debug/open-ahrefs"
    log "running the end-to-end tests against tansu ($KAFKA_BROKERS)"
    # NOTE: tansu 0.6.0 evicts a consumer that stopped heartbeating but leaves it in the
    # member list of the next JoinGroup, so its partitions are assigned to the dead member
    # again and never consumed. The SIGKILL test therefore runs on the mock broker only;
    # on Apache Kafka the partitions move to the live consumer after session.timeout.ms.
    cargo test --test pipeline --test crawl_policy -- --test-threads 2 --skip scraper_killed_mid_crawl
fi

# The API checks start their own broker unless KAFKA_BROKERS was given.
stop_process broker
run_api_checks

# The browser tests start a PostgreSQL server of their own on OPEN_AHREFS_PG_PORT, which
# may be the port of the suite's server.
stop_postgres
# The debug binary is built already; the release build would add minutes to the suite.
OPEN_AHREFS_PROFILE=debug OPEN_AHREFS_STATE_DIR="$STATE_DIR/browser" "$ROOT/scripts/browser-test.sh"
