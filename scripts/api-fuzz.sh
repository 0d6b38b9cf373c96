#!/usr/bin/env bash
# Fuzz the admin API with schemathesis against a running local cluster: every operation
# of /api/openapi.json gets valid and invalid inputs, and the run fails on any 5xx
# response, a crash, or a response that its OpenAPI description does not allow.
#
#   scripts/api-fuzz.sh                 MAX_EXAMPLES=100 per operation by default
#   MAX_EXAMPLES=20 scripts/api-fuzz.sh  the short run of scripts/test.sh (about a minute)
#
# It starts the local cluster of scripts/local-cluster.sh with ADMIN_TOKEN set
# (OPEN_AHREFS_PROFILE=debug uses the debug build), crawls a small site so that the
# read endpoints have data, and stops the cluster at the end. schemathesis comes from
# PyPI, installed into a virtualenv under the state folder.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${MAX_EXAMPLES:-100}
ADMIN_PORT=${OPEN_AHREFS_ADMIN_PORT:-8000}
API=http://127.0.0.1:$ADMIN_PORT
BOOK_PORT=${OPEN_AHREFS_BOOK_PORT:-18080}
VENV=$STATE_DIR/schemathesis

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi

cleanup() {
    stop_process book-server
    "$ROOT/scripts/local-cluster.sh" down
}
trap cleanup EXIT

export ADMIN_TOKEN
ADMIN_TOKEN=fuzz-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
# The crawl only needs to give the read endpoints some rows.
export CRAWL_DELAY_MS=${CRAWL_DELAY_MS:-0}
serve_rust_book "$BOOK_PORT"
"$ROOT/scripts/local-cluster.sh" up
"$ROOT/target/${OPEN_AHREFS_PROFILE:-release}/open-ahrefs" crawl "http://127.0.0.1:$BOOK_PORT/index.html" \
    --api "$API" --token "$ADMIN_TOKEN" >&2

# /readyz answers 503 until the admin has its topics, and schemathesis counts any 5xx as a
# failure, so the fuzzing starts once the admin is ready.
for _ in $(seq 120); do
    curl -sf -o /dev/null "$API/readyz" && break
    sleep 0.5
done
curl -sf -o /dev/null "$API/readyz" || die "the admin did not become ready; see $LOG_DIR/admin.log"

report=$STATE_DIR/schemathesis-report
log "fuzzing $API/api/openapi.json, $MAX_EXAMPLES examples per operation; report in $report"
# schemathesis keeps a cache in .schemathesis/ of its working folder, which is the state
# folder here and not the checkout.
cd "$STATE_DIR"
# not_a_server_error fails on any 5xx; the conformance checks fail on responses that the
# document does not describe. The run exits non-zero on any failure.
# NOTE: with --workers 2 on CPython 3.11.7, schemathesis 4.32.5 stopped on two operations
# with "SystemError: AST constructor recursion depth mismatch" from ast.parse inside
# hypothesis, a CPython bug seen in threaded programs (gh-106905). One worker avoided it.
"$VENV/bin/schemathesis" run "$API/api/openapi.json" \
    --header "Authorization: Bearer $ADMIN_TOKEN" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --workers 1 \
    --request-timeout 30 \
    --seed 1 \
    --generation-database none \
    --no-color \
    --report junit --report-dir "$report"
