#!/usr/bin/env bash
# The demo behind `make demo`: one worker on the embedded defaults (its own
# nats-server, the Vercel simulator in-process), about 20 deploys of
# examples/nextjs-prisma submitted with enqueue, progress and claim URLs
# shown as they arrive, then a clean SIGTERM shutdown.
#
# DEMO_NATS_PORT, DEMO_HTTP_PORT, DEMO_REPEAT and DEMO_BUILD_TIME change the
# defaults below; the worker reads its own settings (SIM_LIMITS, …) from the
# environment too. DEMO_AFTER, when set, is a command run after the batch
# ends and before the worker stops, with DEMO_HTTP_ADDR and DEMO_NATS_ADDR
# in its environment (deploy/lint.sh queries a Prometheus with it); its
# failure fails the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

nats_addr="127.0.0.1:${DEMO_NATS_PORT:-14222}"
http_addr="127.0.0.1:${DEMO_HTTP_PORT:-18080}"
repeat="${DEMO_REPEAT:-10}"
build_time="${DEMO_BUILD_TIME:-3s}"

# The first build compiles every dependency (about half a minute on two
# CPUs); later ones take a second.
echo "==> building bin/worker and bin/enqueue (the first build takes about 30 s)"
go build -o bin/ ./cmd/worker ./cmd/enqueue

# A port in use is said before the worker tries it, with the way out.
port_in_use() { { exec 4<>"/dev/tcp/${1%:*}/${1#*:}"; } 2>/dev/null && { exec 4<&- 4>&-; return 0; }; return 1; }
if port_in_use "$nats_addr"; then
	echo "make demo: $nats_addr is in use (another demo or worker?): stop it, or pick a free port, e.g. DEMO_NATS_PORT=24222 make demo" >&2
	exit 1
fi
if port_in_use "$http_addr"; then
	echo "make demo: $http_addr is in use: stop what listens there, or pick a free port, e.g. DEMO_HTTP_PORT=28080 make demo" >&2
	exit 1
fi
data="$(mktemp -d)"
worker_pid=""
cleanup() {
	if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
		kill -TERM "$worker_pid" 2>/dev/null || true
		wait "$worker_pid" 2>/dev/null || true
	fi
	rm -rf "$data"
}
trap cleanup EXIT

echo "==> starting a worker: embedded NATS on $nats_addr, simulated Vercel (builds take $build_time)"
bin/worker --simulate --sim-build-time "$build_time" --data-dir "$data" \
	--embedded-nats-addr "$nats_addr" --http-addr "$http_addr" --concurrency 32 \
	--log-level warn 2>"$data/worker.log" &
worker_pid=$!

# Ready means NATS is up and the streams exist; poll /readyz for up to 30 s.
ready=""
for _ in $(seq 1 300); do
	if ! kill -0 "$worker_pid" 2>/dev/null; then
		echo "worker exited early:" >&2
		cat "$data/worker.log" >&2
		exit 1
	fi
	# The group keeps a refused connection quiet (exec with only a
	# redirection would silence the shell for good).
	if { exec 3<>"/dev/tcp/${http_addr%:*}/${http_addr#*:}"; } 2>/dev/null; then
		printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3
		read -r status_line <&3 || true
		exec 3<&- 3>&-
		case "$status_line" in *" 200 "*) ready=1; break ;; esac
	fi
	sleep 0.1
done
[ -n "$ready" ] || { echo "worker not ready after 30 s" >&2; cat "$data/worker.log" >&2; exit 1; }

echo "==> submitting examples/demo.jsonl x$repeat and following the events"
status=0
bin/enqueue submit --nats-url "nats://$nats_addr" --file examples/demo.jsonl --repeat "$repeat" --wait || status=$?

if [ -n "${DEMO_AFTER:-}" ]; then
	echo "==> $DEMO_AFTER"
	DEMO_HTTP_ADDR=$http_addr DEMO_NATS_ADDR=$nats_addr bash -c "$DEMO_AFTER" || status=$?
fi

echo "==> stopping the worker (SIGTERM)"
kill -TERM "$worker_pid"
wait "$worker_pid" || { echo "worker exited with $?" >&2; cat "$data/worker.log" >&2; exit 1; }
worker_pid=""
echo "==> worker shut down cleanly"
exit "$status"
