// Package load is the benchmark `bench load` (cmd/bench). It measures what
// deployq itself costs: the queue, checkpoints and events around the
// deploy pipeline, on one machine, with every figure it compares measured
// side by side in the same run.
//
// Everything runs in this one process, against an embedded nats-server
// reached over loopback TCP (127.0.0.1, its own temporary store, file
// storage, one replica) and the Vercel simulator served on 127.0.0.1. Each
// measurement starts from a fresh server and simulator, runs untimed
// warm-up work first, and is then timed.
//
//  1. Queue overhead. The same N jobs of one small app, against a
//     simulator with no latency, no limits and builds that are READY at
//     once, run (a) through deployq: Client.Submit from -producers
//     goroutines, one Worker with -concurrency slots, timed from the first
//     Submit to the last terminal event received by Client.Watch; and
//     (b) directly: the pipeline's API calls in its order (direct.go),
//     reading the tarball from the source store as a worker does, without
//     message, checkpoint, lease or event, from -concurrency goroutines:
//     what a platform calling Vercel itself would run. The ratio a/b is
//     what the queue leaves of that throughput. (a′) is (a) with a worker
//     that publishes no progress events (worker.Config.NoProgressEvents):
//     what they cost.
//  2. Broker baseline. Raw JetStream on the same kind of server: async
//     publishes of 128-byte messages to a work-queue stream, then a durable
//     pull consumer fetching them in batches with explicit acks, and
//     synchronous publishes from one goroutine. deployq's jobs/s is shown
//     as a fraction of these.
//  3. Submit throughput. All requests sharing one tarball, no worker
//     running: Client.Submit from one goroutine and from
//     -submit-goroutines, and Client.SubmitBatch (at most -submit-batch
//     requests a call) from as many, each on a server of its own. Shown
//     against the async publish rate of item 2, SubmitBatch's against the
//     same round's.
//  4. Latency at part load. Requests submitted open loop (evenly spaced,
//     whatever the system does) at -latency-load × the median jobs/s of
//     (a), with builds of -latency-build. Per job: Submit's return to the
//     first API request (create project) reaching the simulator, and the
//     deployment's READY time in the simulator to the terminal event at
//     the watcher, split at the status poll that saw READY.
//
// Items 1 to 3 run in -k rounds, interleaved (a, b, a′, broker, submit;
// the next round starts with b, the one after with a′), so a noisy
// neighbour touches every figure alike; medians and ranges are reported.
// Item 4 runs once, last.
//
// Machines are shared, so item 1 also reports the process's CPU time per
// job (everything runs in this process: broker, simulator, clients): a
// neighbour steals wall time, not CPU time, so b/a of CPU per job stays
// put when jobs/s does not. On Linux every timed run of item 1 and item 4
// also records how much of the machine other processes used meanwhile
// (/proc/stat minus this process), and the report flags runs where that
// exceeded 10 %.
//
// It prints Markdown tables and writes the raw figures, the settings and
// a description of the machine to -outdir/loadbench.json.
//
//	go run ./cmd/bench load                        # about a minute on 2 CPUs
//	go run ./cmd/bench load -n 5000 -concurrency 64 -k 5
//	go run ./cmd/bench load -k 1 -skip-latency -outdir "" -profile-dir /tmp/loadbench-prof
//	go tool pprof -top /tmp/loadbench-prof/queued-cpu.pprof
//	go tool pprof -top -sample_index=alloc_space \
//	    -base /tmp/loadbench-prof/queued-mem-base.pprof /tmp/loadbench-prof/queued-mem.pprof
//
// Flags:
//
//	-n 2000                 jobs per timed run of item 1
//	-concurrency 32         jobs in flight in item 1: worker slots (a), goroutines (b)
//	-producers 8            goroutines calling Submit in item 1(a)
//	-warmup 0               untimed jobs before each run of item 1; 0 is 2 × -concurrency
//	-k 3                    rounds of items 1 to 3
//	-raw-n 200000           messages per broker measurement
//	-raw-batch 256          Fetch batch of the broker's consumer
//	-raw-pending 4096       most async publishes awaiting their ack
//	-submit-n1 500          requests submitted by one goroutine
//	-submit-n 2000          requests submitted by -submit-goroutines goroutines
//	-submit-goroutines 32
//	-submit-batch 1000      most requests per SubmitBatch call; fewer so that every goroutine has one
//	-latency-load 0.5       item 4's rate as a fraction of (a)'s median jobs/s
//	-latency-rate 0         item 4's rate in jobs/s; overrides -latency-load
//	-latency-build 2s       simulated build time in item 4
//	-latency-build-jitter 0 uniform random [0, jitter) added to each build
//	-latency-duration 15s   arrivals counted in item 4
//	-latency-warmup 3s      arrivals before those, at the same rate, not counted
//	-latency-concurrency 0  worker slots in item 4; 0 sizes them from rate and build
//	-latency-inflight 256   most Submit calls at once in item 4
//	-skip-latency           skip item 4
//	-cpuprofile FILE        CPU profile of one extra run of item 1(a)
//	-memprofile FILE        heap profile at the end of that run, and FILE-base at its start
//	-profile-dir DIR        both profiles of one extra run of (a) and of (b):
//	                        queued-cpu.pprof, queued-mem.pprof, queued-mem-base.pprof,
//	                        direct-cpu.pprof, direct-mem.pprof, direct-mem-base.pprof
//	-outdir docs/benchmarks where loadbench.json goes; empty skips it
//	-timeout 2m             longest wait for one run's jobs or messages
//	-seed 0                 simulator seed; 0 draws one (recorded)
//	-keep                   keep the temporary NATS stores
//
// Profiled runs come after the measured ones, so profiling never slows a
// reported figure. A heap profile's alloc_space counts from the start of
// the process; -base with the -base file leaves the run's own allocations.
//
// The process exits 1 if a measurement fails (the tables and the JSON are
// still written, with the problem), 2 on a usage error.
package load
