# Shared shell functions of the local cluster and the test command: they make PostgreSQL
# and a Kafka-API broker available, starting local ones when DATABASE_URL or
# KAFKA_BROKERS is not set. Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${OPEN_AHREFS_STATE_DIR:-$ROOT/.local}
LOG_DIR=$STATE_DIR/logs
RUN_DIR=$STATE_DIR/run
mkdir -p "$LOG_DIR" "$RUN_DIR"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Run a command as the postgres user when we are root, because initdb refuses root.
as_pg_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

install_postgres() {
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed; install Debian's postgresql package or set DATABASE_URL"
    log "installing PostgreSQL (Debian package postgresql)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

# Start a private PostgreSQL cluster (data under $STATE_DIR/pg) unless DATABASE_URL is set,
# and export DATABASE_URL for the database named $1.
ensure_postgres() {
    local database=${1:-open_ahrefs}
    if [ -n "${DATABASE_URL:-}" ]; then
        log "using DATABASE_URL from the environment"
        return
    fi
    local pgbin
    pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$pgbin" ]; then
        install_postgres
        pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi

    local port=${OPEN_AHREFS_PG_PORT:-55432}
    local data=$STATE_DIR/pg
    # The postgres user must be able to reach the data folder; a checkout under a private
    # home folder is not reachable, so the cluster then lives under /tmp.
    if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$STATE_DIR"; then
        data=/tmp/open-ahrefs-pg-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
    fi
    if [ ! -s "$data/PG_VERSION" ]; then
        log "creating a PostgreSQL cluster in $data"
        mkdir -p "$data"
        [ "$(id -u)" = 0 ] && chown postgres: "$data"
        as_pg_owner "$pgbin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$LOG_DIR/initdb.log" 2>&1 \
            || die "initdb failed; see $LOG_DIR/initdb.log"
    fi
    if ! as_pg_owner "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        log "starting PostgreSQL on 127.0.0.1:$port"
        local extra=""
        if [ "${OPEN_AHREFS_PG_DURABLE:-1}" = 0 ]; then
            # Test runs trade crash safety for speed; their data is thrown away anyway.
            extra="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        fi
        # More server settings, such as "-c shared_buffers=1GB", from the caller.
        extra="$extra ${OPEN_AHREFS_PG_OPTIONS:-}"
        as_pg_owner "$pgbin/pg_ctl" -D "$data" -w -t 60 -l "$data/server.log" \
            -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c max_connections=300 $extra" start >&2 \
            || die "PostgreSQL did not start; see $data/server.log"
    fi
    echo "$data" >"$RUN_DIR/pg.data"
    echo "$pgbin" >"$RUN_DIR/pg.bin"
    export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
    psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1 \
        || psql -d postgres -qc "CREATE DATABASE $database" >&2
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/$database"
}

stop_postgres() {
    [ -f "$RUN_DIR/pg.data" ] || return 0
    local data pgbin
    data=$(cat "$RUN_DIR/pg.data")
    pgbin=$(cat "$RUN_DIR/pg.bin")
    as_pg_owner "$pgbin/pg_ctl" -D "$data" -m fast stop >&2 || true
    rm -f "$RUN_DIR/pg.data" "$RUN_DIR/pg.bin"
}

# Start a background process, remembering its pid under $RUN_DIR/$1.pid.
start_process() {
    local name=$1
    shift
    "$@" >"$LOG_DIR/$name.log" 2>&1 &
    echo $! >"$RUN_DIR/$name.pid"
}

# Stop the named processes with SIGTERM, all at once, and SIGKILL those still running
# after 30 s.
stop_process() {
    local name pid
    local -A pids=()
    # All at once, because each may take seconds to drain and leave its consumer group.
    for name in "$@"; do
        [ -f "$RUN_DIR/$name.pid" ] || continue
        pid=$(cat "$RUN_DIR/$name.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            pids[$name]=$pid
        fi
    done
    for name in "${!pids[@]}"; do
        pid=${pids[$name]}
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && { log "$name did not stop in 30 s; killing it"; kill -KILL "$pid"; }
    done
    for name in "$@"; do
        rm -f "$RUN_DIR/$name.pid"
    done
}

# Print a port on 127.0.0.1 that nothing listens on now, for a server started next. It is taken
# below the kernel's ephemeral range, where a port handed out for port 0 could become the local
# end of an outgoing connection before the server binds it.
free_port() {
    python3 - <<'PY'
import os, random, socket
generator = random.Random(os.getpid())
for _ in range(200):
    port = generator.randrange(20000, 32000)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
else:
    raise SystemExit("no free port between 20000 and 32000")
PY
}

wait_for_port() {
    local host=$1 port=$2 what=$3
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    die "$what did not listen on $host:$port within 60 s"
}

# Serve the Rust book that rustup installs on 127.0.0.1:$1 as the process book-server, the
# site that the load test and the API fuzzing crawl while they run.
serve_rust_book() {
    local book
    book=$(rustc --print sysroot)/share/doc/rust/html/book
    [ -d "$book" ] || die "the Rust book is not installed at $book; install it with rustup component add rust-docs"
    start_process book-server python3 -m http.server "$1" --bind 127.0.0.1 --directory "$book"
    wait_for_port 127.0.0.1 "$1" "the book server"
}

# Install tansu, a Kafka-compatible broker, with its in-memory and SQLite storage engines,
# and export OPEN_AHREFS_TANSU_BIN. The tests use only the in-memory engine, but the
# SQLite engine stays in the build so that existing installs are reused. The build takes
# about 25 minutes on two cores, so it goes to a folder outside the checkout
# (OPEN_AHREFS_TANSU_ROOT) that later runs and other checkouts reuse.
TANSU_VERSION=0.6.0
ensure_tansu() {
    local root=${OPEN_AHREFS_TANSU_ROOT:-$HOME/.cache/open-ahrefs/tansu-$TANSU_VERSION-libsql}
    if [ ! -x "$root/bin/tansu" ]; then
        log "installing tansu $TANSU_VERSION with SQLite storage into $root (about 25 minutes)"
        mkdir -p "$root"
        # A build directory of its own lets an interrupted install resume where it stopped.
        CARGO_TARGET_DIR=${OPEN_AHREFS_TANSU_BUILD_DIR:-$HOME/.cache/open-ahrefs/tansu-build} \
        cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql --root "$root" \
            >"$LOG_DIR/tansu-install.log" 2>&1 || die "installing tansu failed; see $LOG_DIR/tansu-install.log"
    fi
    export OPEN_AHREFS_TANSU_BIN=$root/bin/tansu
}

# Start a broker unless KAFKA_BROKERS is set, and export KAFKA_BROKERS.
# OPEN_AHREFS_BROKER chooses it: `mock` (librdkafka's in-memory mock cluster, the default)
# or `tansu`.
ensure_broker() {
    local binary=$1
    if [ -n "${KAFKA_BROKERS:-}" ]; then
        log "using KAFKA_BROKERS=$KAFKA_BROKERS from the environment"
        return
    fi
    case ${OPEN_AHREFS_BROKER:-mock} in
        mock)
            rm -f "$RUN_DIR/broker.addr"
            start_process broker "$binary" dev-broker --bootstrap-file "$RUN_DIR/broker.addr"
            for _ in $(seq 300); do [ -s "$RUN_DIR/broker.addr" ] && break; sleep 0.1; done
            [ -s "$RUN_DIR/broker.addr" ] || die "the development broker did not start; see $LOG_DIR/broker.log"
            export KAFKA_BROKERS
            KAFKA_BROKERS=$(cat "$RUN_DIR/broker.addr")
            log "in-memory development broker at $KAFKA_BROKERS"
            ;;
        tansu)
            ensure_tansu
            local port=${OPEN_AHREFS_TANSU_PORT:-19092}
            start_process broker "$OPEN_AHREFS_TANSU_BIN" broker --storage-engine memory://tansu/ \
                --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port"
            wait_for_port 127.0.0.1 "$port" tansu
            export KAFKA_BROKERS=127.0.0.1:$port
            log "tansu broker at $KAFKA_BROKERS"
            ;;
        *) die "OPEN_AHREFS_BROKER must be 'mock' or 'tansu', got '$OPEN_AHREFS_BROKER'" ;;
    esac
}
