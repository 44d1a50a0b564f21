#!/usr/bin/env bash
# deploy/lint.sh (make lint-deploy): validates everything under deploy/
# without a Kubernetes cluster, a Docker engine or a Grafana, and exits
# non-zero if any check fails (at once, except the tenant permission check,
# after which the other live checks still report). It installs what it
# lacks: promtool and docker-compose with apt-get; nats-server, kubeconform,
# kustomize and upstream promtool with the Go toolchain (the first build of
# upstream promtool takes about 3 minutes; later runs take under a minute);
# and builds the helpers under deploy/tools.
#
#   nats/        nats-server -t on each config; then boots the three nodes on
#                loopback ports, checks /healthz, the JetStream meta leader
#                (/jsz) and the routes, runs a worker as deployq-worker and
#                proves a tenant's permissions with pkg/jobs.Client (what it
#                may do works, every way to other tenants is refused),
#                scrapes the worker's /metrics, checks the series the KEDA
#                trigger's query reads are there, and stops everything.
#   k8s/         kubeconform -strict against JSON schemas generated here from
#                the k8s.io/kubernetes and KEDA Go modules (nothing is
#                downloaded from a schema registry), on `kustomize build`;
#                then the properties the deployment relies on.
#   prometheus/  promtool check config (Debian's promtool, and upstream
#                promtool built from the module proxy, which has the
#                Kubernetes service discovery Debian's lacks), check rules,
#                test rules; promtool check metrics on the live scrape.
#   grafana/     valid JSON, unique panel ids, datasource variable, every
#                query parsed by promtool, every metric name defined in
#                pkg/metrics; provisioning files.
#   Dockerfile   BuildKit's parser and lint rules; the build stage's go build
#                on the context the .dockerignore leaves, binary static.
#   docker-compose.yml  docker-compose config -q; mounted files exist.
#   docs/OPERATIONS.md  a runbook section for every alert, every metric.
#
# Environment: GO (default go), LINT_PORT_BASE (default 14300: uses
# BASE+1..3 for NATS clients, BASE+2001..3 routes, BASE+4001..3 monitoring,
# BASE+3778 the worker), KEEP_WORK=1 keeps the scratch directory.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
GO=${GO:-go}
GOBIN=$("$GO" env GOBIN)
[ -n "$GOBIN" ] || GOBIN=$("$GO" env GOPATH)/bin
export PATH="$GOBIN:$PATH"

NATS_SERVER_VERSION=v2.15.2
KUBECONFORM_VERSION=v0.8.0
KUSTOMIZE_VERSION=v5.8.2
# Schemas: the Kubernetes release the manifests target, and KEDA's CRDs.
K8S_VERSION=v1.36.3
KEDA_VERSION=v2.21.0

WORK=$(mktemp -d "${TMPDIR:-/tmp}/deployq-lint.XXXXXX")
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ "${KEEP_WORK:-0}" = 1 ]; then
		echo "scratch kept in $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

START=$SECONDS
STEP_START=$SECONDS
# Failures that do not stop the run (so the later checks still report).
FAILURES=()
TIMES=()
step() {
	if [ -n "${STEP_NAME:-}" ]; then
		TIMES+=("$(printf '%4ss  %s' $((SECONDS - STEP_START)) "$STEP_NAME")")
	fi
	STEP_NAME=$1
	STEP_START=$SECONDS
	printf '\n== %s\n' "$1"
}
die() {
	echo "lint-deploy: FAIL: $*" >&2
	exit 1
}
# expect_fail DESCRIPTION CMD...: the command must fail (a check that bites).
expect_fail() {
	local what=$1
	shift
	if "$@" >"$WORK/expect_fail.log" 2>&1; then
		cat "$WORK/expect_fail.log"
		die "a broken $what was accepted"
	fi
	echo "  ok     a broken $what is rejected"
}

# ---------------------------------------------------------------------------
step "tools"
apt_install() {
	local sudo=""
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null || die "need root or sudo to apt-get install $*"
		sudo=sudo
	fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v curl >/dev/null || missing+=(curl)
command -v file >/dev/null || missing+=(file)
if [ ${#missing[@]} -gt 0 ]; then
	echo "apt-get install ${missing[*]}"
	apt_install "${missing[@]}"
fi
go_install() { # binary module@version
	if ! command -v "$1" >/dev/null; then
		echo "go install $2"
		"$GO" install "$2"
	fi
}
go_install nats-server "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
go_install kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
go_install kustomize "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
BIN=$WORK/bin
mkdir -p "$BIN"
# Upstream promtool, with Kubernetes service discovery: built once (~3 min)
# into GOBIN under a name carrying its version.
PROMTOOL_UPSTREAM_VERSION=$(grep -o 'prometheus/prometheus v[0-9.]*' deploy/tools/promtool/go.mod | head -1 | cut -d' ' -f2)
PROMTOOL_UPSTREAM=$GOBIN/promtool-upstream-$PROMTOOL_UPSTREAM_VERSION
if [ ! -x "$PROMTOOL_UPSTREAM" ]; then
	echo "go build promtool $PROMTOOL_UPSTREAM_VERSION (deploy/tools/promtool)"
	"$GO" build -C deploy/tools/promtool -o "$PROMTOOL_UPSTREAM" github.com/prometheus/prometheus/cmd/promtool
fi
"$GO" build -o "$BIN/" ./deploy/tools/natscheck ./deploy/tools/dashcheck ./deploy/tools/promcheck
"$GO" build -C deploy/tools/kube -o "$BIN/kube" .
"$GO" build -C deploy/tools/dockerfile -o "$BIN/dockerfile" .
echo "  promtool:        $(promtool --version 2>&1 | head -1)"
echo "  promtool (k8s):  upstream, module prometheus/prometheus $PROMTOOL_UPSTREAM_VERSION"
echo "  docker-compose:  $(docker-compose version --short 2>/dev/null || docker-compose --version)"
echo "  nats-server:     $(nats-server --version)"
echo "  kubeconform:     $(kubeconform -v)"
echo "  kustomize:       $(kustomize version)"

# ---------------------------------------------------------------------------
step "NATS configs: nats-server -t"
# The configs read every password from the environment: throwaway ones here.
rand() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }
DEPLOYQ_WORKER_PASSWORD="w$(rand)"
DEPLOYQ_ADMIN_PASSWORD="a$(rand)"
TENANT_ACME_PASSWORD="t$(rand)"
TENANT_GLOBEX_PASSWORD="g$(rand)"
NATS_SYS_PASSWORD="s$(rand)"
export DEPLOYQ_WORKER_PASSWORD DEPLOYQ_ADMIN_PASSWORD TENANT_ACME_PASSWORD TENANT_GLOBEX_PASSWORD NATS_SYS_PASSWORD
for i in 0 1 2; do
	nats-server -t -c "deploy/nats/nats-$i.conf"
done
grep -h '^server_name:' deploy/nats/nats-*.conf | sort | uniq -d | grep . && die "server_name repeated"
echo "  ok     three distinct server_name values"
expect_fail "NATS config (a password variable unset)" \
	env -u TENANT_ACME_PASSWORD nats-server -t -c deploy/nats/nats-0.conf

# ---------------------------------------------------------------------------
step "Kubernetes: kustomize build, kubeconform -strict, policy"
"$BIN/kube" schemas -out "$WORK/schemas" -kubernetes "$K8S_VERSION" -keda "$KEDA_VERSION"
SCHEMA="$WORK/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json"
kustomize build deploy/k8s >"$WORK/k8s.yaml"
kubeconform -strict -summary -schema-location "$SCHEMA" "$WORK/k8s.yaml" deploy/k8s/secret.template.yaml
sed 's/readOnlyRootFilesystem: true/readOnlyRootFileSystem: true/' deploy/k8s/deployment.yaml >"$WORK/bad-deployment.yaml"
expect_fail "Deployment (misspelt field)" kubeconform -strict -schema-location "$SCHEMA" "$WORK/bad-deployment.yaml"
sed 's/threshold: "16"/threshold: 16/' deploy/k8s/scaledobject.yaml >"$WORK/bad-scaledobject.yaml"
expect_fail "ScaledObject (number where KEDA wants a string)" kubeconform -strict -schema-location "$SCHEMA" "$WORK/bad-scaledobject.yaml"
"$BIN/kube" policy -rendered "$WORK/k8s.yaml" -secret-template deploy/k8s/secret.template.yaml

# ---------------------------------------------------------------------------
step "Prometheus: check config, check rules, test rules"
promtool check config deploy/prometheus/prometheus.compose.yml
"$PROMTOOL_UPSTREAM" check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/rules/recording.yml deploy/prometheus/rules/alerts.yml
echo "promtool $(promtool --version 2>&1 | head -1 | awk '{print $3}'):"
promtool test rules deploy/prometheus/tests/alerts_test.yml
echo "upstream promtool:"
"$PROMTOOL_UPSTREAM" test rules deploy/prometheus/tests/alerts_test.yml
# Every alert: summary, description, a runbook_url whose section exists.
alerts=$(grep -E '^\s+- alert: ' deploy/prometheus/rules/alerts.yml | awk '{print $3}')
for a in $alerts; do
	lower=$(echo "$a" | tr '[:upper:]' '[:lower:]')
	grep -q "runbook_url: \"https://github.com/deployq/deployq/blob/main/docs/OPERATIONS.md#$lower\"" deploy/prometheus/rules/alerts.yml ||
		die "alert $a: no runbook_url to docs/OPERATIONS.md#$lower"
	grep -qx "### $a" docs/OPERATIONS.md || die "alert $a: no '### $a' runbook section in docs/OPERATIONS.md"
	grep -q "alertname: $a\$" deploy/prometheus/tests/alerts_test.yml || die "alert $a: no unit test"
done
[ "$(grep -c 'summary:' deploy/prometheus/rules/alerts.yml)" -eq "$(echo "$alerts" | wc -w)" ] || die "an alert lacks a summary"
[ "$(grep -c 'description:' deploy/prometheus/rules/alerts.yml)" -eq "$(echo "$alerts" | wc -w)" ] || die "an alert lacks a description"
echo "  ok     $(echo "$alerts" | wc -w) alerts: each has summary, description, a runbook section in docs/OPERATIONS.md and a unit test"

# ---------------------------------------------------------------------------
step "Grafana: dashboard and provisioning"
"$BIN/dashcheck" -dashboard deploy/grafana/dashboards/deployq.json -rules-out "$WORK/dashboard-queries.yml" \
	-metrics-src pkg/metrics -documented docs/OPERATIONS.md \
	-names deploy/prometheus/rules/recording.yml -names deploy/prometheus/rules/alerts.yml \
	-names deploy/prometheus/tests/alerts_test.yml -names docs/OPERATIONS.md
promtool check rules "$WORK/dashboard-queries.yml"
sed 's/"id": 3,/"id": 2,/' deploy/grafana/dashboards/deployq.json >"$WORK/bad-dashboard.json"
expect_fail "dashboard (duplicate panel id)" "$BIN/dashcheck" -dashboard "$WORK/bad-dashboard.json"
sed 's/sum by (outcome) (rate(/sum by (outcome) (rate((/' deploy/grafana/dashboards/deployq.json >"$WORK/bad-dashboard.json"
"$BIN/dashcheck" -dashboard "$WORK/bad-dashboard.json" -rules-out "$WORK/bad-queries.yml" >/dev/null
expect_fail "dashboard query (unbalanced parenthesis)" promtool check rules "$WORK/bad-queries.yml"
sed 's/deployq_jobs_in_flight/deployq_jobs_inflight/' deploy/grafana/dashboards/deployq.json >"$WORK/bad-dashboard.json"
expect_fail "dashboard (unknown metric name)" "$BIN/dashcheck" -dashboard "$WORK/bad-dashboard.json"
"$BIN/kube" grafana -datasources deploy/grafana/provisioning/datasources/prometheus.yml \
	-dashboards deploy/grafana/provisioning/dashboards/deployq.yml -compose deploy/docker-compose.yml

# ---------------------------------------------------------------------------
step "Dockerfile and docker-compose"
"$BIN/dockerfile" deploy/Dockerfile
# The build stage, on the context the .dockerignore leaves.
CTX=$WORK/context
mkdir -p "$CTX"
sed -e '/^#/d' -e '/^[[:space:]]*$/d' -e 's|^|./|' deploy/Dockerfile.dockerignore >"$WORK/tar-exclude"
tar -C "$ROOT" -cf - --exclude-from="$WORK/tar-exclude" . | tar -C "$CTX" -xf -
(cd "$CTX" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags="-s -w" -o "$WORK/image/" ./cmd/worker ./cmd/enqueue ./cmd/vercelsim)
for b in worker enqueue vercelsim; do
	file "$WORK/image/$b" | grep -q 'statically linked' || die "$b is not statically linked: $(file "$WORK/image/$b")"
done
"$WORK/image/worker" --help >/dev/null
echo "  ok     build stage on the .dockerignore'd context ($(du -sh "$CTX" | cut -f1)): worker, enqueue, vercelsim statically linked"
docker-compose -f deploy/docker-compose.yml config -q
docker-compose -f deploy/docker-compose.yml config >"$WORK/compose.yaml"
# Bind mounts: every host path exists.
n=0
while read -r src; do
	[ -e "$src" ] || die "docker-compose mounts $src, which does not exist"
	n=$((n + 1))
done < <(grep -oE "^\s+- (/[^:]+):/" "$WORK/compose.yaml" | sed -E 's/^\s+- //; s/:\/$//' | grep "^$ROOT/deploy")
[ "$n" -gt 0 ] || die "found no bind mounts in the docker-compose output"
echo "  ok     docker-compose config valid; its $n bind-mounted paths exist"

# ---------------------------------------------------------------------------
step "live: 3-node NATS cluster, worker, tenant permissions, KEDA trigger, /metrics"
BASE=${LINT_PORT_BASE:-14300}
ROUTES="nats://127.0.0.1:$((BASE + 2001)),nats://127.0.0.1:$((BASE + 2002)),nats://127.0.0.1:$((BASE + 2003))"
CLIENTS="nats://127.0.0.1:$((BASE + 1)),nats://127.0.0.1:$((BASE + 2)),nats://127.0.0.1:$((BASE + 3))"
MONITORS="http://127.0.0.1:$((BASE + 4001)),http://127.0.0.1:$((BASE + 4002)),http://127.0.0.1:$((BASE + 4003))"
NATSDIR=$WORK/nats
mkdir -p "$NATSDIR"
cp deploy/nats/accounts.conf "$NATSDIR/"
NATS_PIDS=()
for i in 0 1 2; do
	# The config as shipped; only the store directory moves to scratch,
	# and the listen ports come from flags (they override the file).
	sed "s|^\([[:space:]]*store_dir:\).*|\1 $NATSDIR/store-$i|" "deploy/nats/nats-$i.conf" >"$NATSDIR/nats-$i.conf"
	changed=$({ diff "deploy/nats/nats-$i.conf" "$NATSDIR/nats-$i.conf" || true; } | grep -c '^>' || true)
	[ "$changed" -eq 1 ] || die "the store_dir rewrite changed $changed lines"
	nats-server -c "$NATSDIR/nats-$i.conf" -a 127.0.0.1 -p $((BASE + 1 + i)) -m $((BASE + 4001 + i)) \
		--cluster "nats://127.0.0.1:$((BASE + 2001 + i))" --routes "$ROUTES" >"$NATSDIR/nats-$i.log" 2>&1 &
	PIDS+=("$!")
	NATS_PIDS+=("$!")
done
"$BIN/natscheck" cluster -monitor "$MONITORS" -wait 30s

WORKER_ADDR=127.0.0.1:$((BASE + 3778))
url_with() { echo "${CLIENTS//nats:\/\//nats://$1:$2@}"; }
NATS_URL=$(url_with deployq-worker "$DEPLOYQ_WORKER_PASSWORD") STREAM_REPLICAS=3 BUDGET=shared \
	SIMULATE=true SIM_BUILD_TIME=1s ACK_WAIT=10s HTTP_ADDR=$WORKER_ADDR LOG_FORMAT=json \
	"$WORK/image/worker" >"$NATSDIR/worker.log" 2>&1 &
WORKER_PID=$!
PIDS+=("$WORKER_PID")
for _ in $(seq 1 60); do
	curl -sf "http://$WORKER_ADDR/readyz" >/dev/null && break
	kill -0 $WORKER_PID 2>/dev/null || { cat "$NATSDIR/worker.log"; die "the worker exited"; }
	sleep 0.5
done
curl -sf "http://$WORKER_ADDR/healthz" >/dev/null || die "worker /healthz"
curl -sf "http://$WORKER_ADDR/readyz" >/dev/null || { tail -20 "$NATSDIR/worker.log"; die "worker never became ready"; }
echo "  ok     worker as deployq-worker (STREAM_REPLICAS=3, BUDGET=shared): /healthz and /readyz answer 200"

# The admin user (enqueue) runs the example batch through the worker: two
# deploys succeed, one build fails into the DLQ (enqueue exits 1 for it).
ADMIN_URL=$(url_with deployq-admin "$DEPLOYQ_ADMIN_PASSWORD")
rc=0
"$WORK/image/enqueue" --nats-url "$ADMIN_URL" submit --file examples/requests.jsonl --wait --timeout 2m >"$WORK/batch.txt" 2>&1 || rc=$?
tail -1 "$WORK/batch.txt" | grep -q '^2 succeeded, 1 failed' || { cat "$WORK/batch.txt"; die "the example batch did not end 2 succeeded, 1 failed (exit $rc)"; }
"$WORK/image/enqueue" --nats-url "$ADMIN_URL" dlq list --tenant initech >"$WORK/dlq.txt"
grep -q demo-initech-broken "$WORK/dlq.txt" || die "the admin user cannot list the dead letter of the failed deploy"
echo "  ok     admin user: enqueue submit --wait ($(tail -1 "$WORK/batch.txt")), enqueue dlq list shows the failed one"

# A tenant's user, through pkg/jobs.Client: its own deploys work, nothing else does.
"$BIN/natscheck" tenant -servers "$CLIENTS" -tenant acme -password "$TENANT_ACME_PASSWORD" -other globex \
	-source examples/nextjs-prisma -failing examples/failing-build -timeout 90s ||
	FAILURES+=("tenant permissions (natscheck tenant, above)")
# The same tenant through enqueue (--nats-tenant: its inbox prefix, no consumers): its deploy
# runs and is followed; a request for another tenant is refused.
TENANT_URL=$(url_with tenant-acme "$TENANT_ACME_PASSWORD")
tenant_enqueue() { "$WORK/image/enqueue" --nats-url "$TENANT_URL" --nats-tenant acme "$@"; }
TENANT_ID="lint-acme-$(rand)"
if tenant_enqueue submit --tenant acme --source examples/nextjs-prisma --id "$TENANT_ID" --wait --timeout 1m >"$WORK/tenant-submit.txt" 2>&1 &&
	tenant_enqueue status --tenant acme "$TENANT_ID" >"$WORK/tenant-status.txt" 2>&1 &&
	grep -q succeeded "$WORK/tenant-status.txt"; then
	echo "  ok     enqueue as tenant-acme (--nats-tenant acme): submit --wait and status of its own deploy"
else
	cat "$WORK/tenant-submit.txt" "$WORK/tenant-status.txt" 2>/dev/null
	FAILURES+=("enqueue as tenant-acme")
fi
if tenant_enqueue submit --tenant globex --source examples/nextjs-prisma --timeout 10s >"$WORK/tenant-other.txt" 2>&1; then
	cat "$WORK/tenant-other.txt"
	FAILURES+=("enqueue as tenant-acme submitted for globex")
else
	echo "  ok     enqueue as tenant-acme: a request for globex is refused ($(grep -m1 -o 'this client acts for.*' "$WORK/tenant-other.txt" | cut -c1-90 || true))"
fi
curl -sf "http://$WORKER_ADDR/metrics" >"$WORK/metrics.txt"
"$BIN/natscheck" keda -metrics "$WORK/metrics.txt" -scaledobject deploy/k8s/scaledobject.yaml
promtool check metrics <"$WORK/metrics.txt"
echo "  ok     promtool check metrics: no problems in the worker's exposition ($(grep -c '^deployq_' "$WORK/metrics.txt") deployq_ samples)"
"$BIN/dashcheck" -dashboard deploy/grafana/dashboards/deployq.json -metrics-src pkg/metrics -scrape "$WORK/metrics.txt" | tail -1

# The server logs: no refusal for the worker, and the tenant's refusals are there.
if grep -h 'Violation' "$NATSDIR"/nats-*.log | grep -q 'user:deployq-worker"'; then
	grep -h 'Violation' "$NATSDIR"/nats-*.log | grep 'user:deployq-worker"' | head
	die "the worker's permissions are missing something"
fi
refused=$(grep -h 'Violation' "$NATSDIR"/nats-*.log | grep -c 'user:tenant-acme"' || true)
[ "$refused" -gt 0 ] || die "no refusal of tenant-acme in the server logs"
echo "  ok     server logs: no permission refused to deployq-worker; $refused refusals of tenant-acme"

# Graceful stops: the worker exits 0 on SIGTERM, then the servers.
kill -TERM $WORKER_PID
rc=0
wait $WORKER_PID || rc=$?
[ $rc -eq 0 ] || { tail -5 "$NATSDIR/worker.log"; die "the worker exited $rc on SIGTERM"; }
for pid in "${NATS_PIDS[@]}"; do kill -TERM "$pid"; done
for pid in "${NATS_PIDS[@]}"; do wait "$pid" || true; done
PIDS=()
echo "  ok     worker exited 0 on SIGTERM; NATS nodes stopped"

# ---------------------------------------------------------------------------
step "live: Prometheus (Debian's) scraping a worker while the demo runs"
PROM_ADDR=127.0.0.1:$((BASE + 5000))
DEMO_NATS_PORT=$((BASE + 5001))
DEMO_HTTP_PORT=$((BASE + 5002))
PROMDIR=$WORK/prometheus
mkdir -p "$PROMDIR"
# The dashboard's queries as rules too, with the variables a user would
# pick, so that Prometheus evaluates each one against the demo's series.
"$BIN/dashcheck" -dashboard deploy/grafana/dashboards/deployq.json -rules-out "$PROMDIR/dashboard.yml" \
	-var job=deployq-worker -var instance='.*' >/dev/null
{
	echo "global:"
	echo "  scrape_interval: 1s"
	echo "  evaluation_interval: 1s"
	echo "rule_files:"
	echo "  - $ROOT/deploy/prometheus/rules/recording.yml"
	echo "  - $ROOT/deploy/prometheus/rules/alerts.yml"
	echo "  - $PROMDIR/dashboard.yml"
	echo "scrape_configs:"
	echo "  - job_name: deployq-worker"
	echo "    static_configs:"
	echo "      - targets: [\"127.0.0.1:$DEMO_HTTP_PORT\"]"
} >"$PROMDIR/prometheus.yml"
promtool check config "$PROMDIR/prometheus.yml" >/dev/null
prometheus --config.file="$PROMDIR/prometheus.yml" --storage.tsdb.path="$PROMDIR/data" \
	--web.listen-address="$PROM_ADDR" >"$PROMDIR/prometheus.log" 2>&1 &
PROM_PID=$!
PIDS+=("$PROM_PID")
for _ in $(seq 1 60); do
	curl -sf "http://$PROM_ADDR/-/ready" >/dev/null && break
	kill -0 $PROM_PID 2>/dev/null || { cat "$PROMDIR/prometheus.log"; die "prometheus exited"; }
	sleep 0.5
done
curl -sf "http://$PROM_ADDR/-/ready" >/dev/null || die "prometheus never became ready"
echo "  ok     $(prometheus --version 2>&1 | head -1 | cut -d'(' -f1)on $PROM_ADDR, scraping 127.0.0.1:$DEMO_HTTP_PORT every second"
# The demo as `make demo` runs it (10 x examples/demo.jsonl = 20 deploys),
# with a deployments.create limit so the budget has something to pace, an
# hourly window it counts (not reached), and a quota for acme (not reached).
# Before the worker stops: promtool check metrics on its live /metrics,
# then promcheck queries Prometheus's HTTP API.
cat >"$PROMDIR/after.sh" <<'AFTER'
set -euo pipefail
curl -sf "http://$DEMO_HTTP_ADDR/metrics" >"$PROMDIR/demo-metrics.txt"
promtool check metrics <"$PROMDIR/demo-metrics.txt"
echo "  ok     promtool check metrics: the demo worker's live /metrics ($(grep -c '^deployq_' "$PROMDIR/demo-metrics.txt") deployq_ samples)"
# Panels 7, 25, 29, 35 and 39 (step retries, budget pauses, refused
# credentials, parked endpoints, requests held or rejected over quota)
# show only trouble: empty on this healthy run.
"$BIN/promcheck" -prometheus "http://$PROM_ADDR" -succeeded 20 -quiet-panels 7,25,29,35,39
AFTER
export PROMDIR BIN PROM_ADDR DEMO_NATS_PORT DEMO_HTTP_PORT
rc=0
DEMO_REPEAT=10 SIM_LIMITS="deployments.create=20/10s+500/1h" TENANT_QUOTAS="acme=1000/24h" DEMO_AFTER="bash $PROMDIR/after.sh" \
	./scripts/demo.sh >"$PROMDIR/demo.log" 2>&1 || rc=$?
sed -n '/^==> bash/,/^==> stopping/p' "$PROMDIR/demo.log" | grep -v '^==>'
[ $rc -eq 0 ] || { grep -v 'step_completed\|submitted\|url:\|claim:' "$PROMDIR/demo.log" | tail -30; die "the demo with Prometheus failed (exit $rc)"; }
grep -q '^20 succeeded' "$PROMDIR/demo.log" || die "the demo did not end with 20 succeeded"
echo "  ok     the demo: $(grep '^20 succeeded' "$PROMDIR/demo.log")"
kill -TERM $PROM_PID
wait $PROM_PID || true
PIDS=()

step "done"
echo
printf '%s\n' "${TIMES[@]}"
if [ ${#FAILURES[@]} -gt 0 ]; then
	printf 'lint-deploy: FAIL: %s\n' "${FAILURES[@]}" >&2
	echo "lint-deploy: $((SECONDS - START))s" >&2
	exit 1
fi
echo "lint-deploy: all checks passed in $((SECONDS - START))s"
