# deployq — developer entry points. `make demo` and `make test` are the two
# commands a newcomer needs; both work on a fresh machine with only Go.

GO          ?= go
GOBIN       := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
# Packages with goroutines of their own run under the race detector.
# ./chaos/... runs the short chaos test (60 deploys, 1–2 minutes); ./deploy/... the
# tenant-permission test on an embedded server booted from deploy/nats.
RACE_PKGS   := ./pkg/...  ./cmd/...  ./internal/...  ./chaos/...  ./deploy/...
# Fuzz budgets are counts of inputs, not durations: with a duration, Go 1.26's fuzzing
# coordinator can report "context deadline exceeded" as a failure when the time runs out on a
# loaded machine (go.dev/issue/75804, fixed in Go 1.27); a count has no deadline to race.
FUZZ_DECODE ?= 50000x
FUZZ_PATH   ?= 300x
BIN         := bin

.PHONY: all build test unit vet lint fuzz demo clean tools bench bench-budget bench-load bench-scale bench-fair bench-path bench-apps bench-console screenshots chaos lint-deploy

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## test: everything CI checks: formatting, vet, staticcheck, race-enabled tests, a short fuzz run,
## and the deployment assets validated against live servers (lint-deploy: installs its tools,
## with apt-get for Debian's Prometheus, so it needs root or sudo the first time).
test: vet lint unit fuzz lint-deploy

unit:
	$(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

lint: $(STATICCHECK)
	$(STATICCHECK) ./...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools: $(STATICCHECK)

## fuzz: a short run of each fuzz target (the seed corpus also runs in `unit`): the request
## decoder alone (FUZZ_DECODE inputs), and the whole request path (FUZZ_PATH inputs) (bytes and headers published to a running deployq,
## exactly one terminal event each).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZ_DECODE) ./pkg/jobs/
	$(GO) test -run '^$$' -fuzz '^FuzzRequestPath$$' -fuzztime $(FUZZ_PATH) ./pkg/jobs/worker/

## demo: a worker on embedded NATS + the Vercel simulator, ~20 deploys of examples/, claim URLs printed.
demo:
	./scripts/demo.sh

## chaos: the long chaos test (300 deploys, about 6 minutes): worker processes SIGKILLed every 4 s,
## a NATS node restarted, API faults and 429s; prints the counts (docs/RELIABILITY.md). `make test`
## runs a 60-request version. Keep the worker logs with CHAOS_FLAGS="-artifacts -outputdir DIR".
chaos:
	DEPLOYQ_CHAOS=long $(GO) test -count=1 -v -timeout 20m -run '^TestChaos$$' ./chaos/ $(CHAOS_FLAGS)

## lint-deploy: validate deploy/ offline (NATS configs and a live 3-node cluster with tenant permissions,
## Kubernetes manifests and KEDA, Prometheus rules and their tests, Grafana dashboard, Dockerfile, docker-compose,
## a real Prometheus scraping the demo); installs the tools it lacks. About 50 s once they are built
## (the first run builds upstream promtool: ~3 min more).
lint-deploy:
	./deploy/lint.sh

## bench: every benchmark; docs/BENCHMARKS.md shows and explains their figures (about 30 minutes).
bench: bench-load bench-scale bench-budget bench-fair bench-path bench-apps bench-console

## bench-load: deployq against the bare pipeline, the broker's own rates, Submit's rate, latency at
## half load (about 1 minute); writes docs/benchmarks/loadbench.json. Profiles: LOADBENCH_FLAGS="-profile-dir DIR".
bench-load:
	$(GO) run ./cmd/bench load $(LOADBENCH_FLAGS)

## bench-scale: API requests per deploy with 20/60/180 s builds, and 10 000 deploys in flight in one
## worker process (about 6 minutes); writes docs/benchmarks/scalebench.json.
bench-scale:
	$(GO) run ./cmd/bench scale $(SCALEBENCH_FLAGS)

## bench-budget: shared vs per-process budgets vs the Prisma guide's retries, side by side
## (a few minutes); writes docs/benchmarks/budget.{json,svg}. Vary with BUDGETBENCH_FLAGS="-n 100 …".
bench-budget:
	$(GO) run ./cmd/bench budget $(BUDGETBENCH_FLAGS)

## bench-fair: fair dispatch across tenants against arrival order, side by side: a noisy neighbour,
## ten skewed tenants, 100 000 requests of 1 000 tenants before one worker process, and 1 000
## tenants' consumers on a 3-node cluster (about 7 minutes); writes docs/benchmarks/fair.json. Vary with FAIRBENCH_FLAGS (-parts crowd, …).
bench-fair:
	$(GO) run ./cmd/bench fair $(FAIRBENCH_FLAGS)

## bench-path: submit to claim URL at low load with per-endpoint latencies, each call at its step
## against independent calls sent early, side by side, after 8 unmeasured deploys (about 4 minutes);
## writes docs/benchmarks/path.json.
bench-path:
	$(GO) run ./cmd/bench path $(PATHBENCH_FLAGS)

## bench-apps: a day of traffic compressed into 2 minutes (3 000 requests, 30 % new versions, 15 % of apps
## claimed, the rest expiring after 10 s) against a 500-database cap; every request must succeed
## (about 3 minutes); writes docs/benchmarks/apps.json.
bench-apps:
	$(GO) run ./cmd/bench apps $(APPSBENCH_FLAGS)

## bench-console: the console's first render and page weight with 10 000 jobs kept and 10 000 requests
## queued and a month of older jobs kept, in headless Chromium (about 7 minutes, mostly seeding the jobs); writes docs/benchmarks/console.json.
bench-console:
	$(GO) run ./cmd/bench console $(CONSOLEBENCH_FLAGS)

## screenshots: the console's views, taken from a run like bench-console's (smaller), into docs/console/.
screenshots:
	$(GO) run ./cmd/bench console -jobs 1500 -month 5000 -queued 400 -loads 1 -json "" -screenshots docs/console

clean:
	rm -rf $(BIN) data
