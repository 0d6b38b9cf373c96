#!/usr/bin/env bash
# Run the whole test suite, starting what it needs: a private PostgreSQL (unless
# DATABASE_URL is set), the in-memory development broker, then tansu for a second run of
# the end-to-end tests on a broker that is not librdkafka's own (unless KAFKA_BROKERS is
# set, in which case only that broker is used).
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

export OPEN_AHREFS_PG_DURABLE=0
# tests/faults.rs stops and starts the PostgreSQL server found under this folder.
export OPEN_AHREFS_STATE_DIR=$STATE_DIR
user_brokers=${KAFKA_BROKERS:-}
ensure_postgres open_ahrefs_test

log "building"
cargo build --tests --quiet
cargo build --quiet

# tests/faults.rs restarts a tansu broker of its own, with SQLite storage.
ensure_tansu
ensure_broker "$ROOT/target/debug/open-ahrefs"
log "running the test suite against ${OPEN_AHREFS_BROKER:-mock} ($KAFKA_BROKERS)"
cargo test "$@" -- --test-threads 2

# The second run on tansu belongs to the whole suite; a run of chosen tests (arguments
# given) ends here.
if [ $# -eq 0 ] && [ -z "$user_brokers" ] && [ "${OPEN_AHREFS_BROKER:-mock}" = mock ]; then
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
[ $# -gt 0 ] || OPEN_AHREFS_STATE_DIR="$STATE_DIR/browser" "$ROOT/scripts/browser-test.sh"
