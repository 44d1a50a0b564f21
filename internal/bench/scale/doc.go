// Package scale is the benchmark `bench scale` (cmd/bench). It measures
// two things about one worker that the budget benchmark (bench budget)
// does not:
//
//   - requests: how many Vercel API requests a successful deploy costs when
//     builds take as long as real ones (20 s, 60 s and 180 s by default,
//     each with 20 % jitter), and whether deploys of the same source share
//     one upload. Every build time runs twice: with no build-time
//     expectation, as a freshly started worker has (its estimate is cold:
//     a few jobs follow their build's event stream, the others poll once
//     the first build was seen), and with the expectation set to the true
//     build time, as a worker that has learned it (or was told with
//     EXPECTED_BUILD_TIME) has. The difference is what learning costs.
//     Each configuration has its own NATS, so no estimate is shared
//     between them. All configurations run at the same time, each with its
//     own embedded nats-server, its own simulator and its own worker (in
//     this process: the figures are counts of API requests, which do not
//     depend on who shares the CPU), so the run takes about the longest
//     build plus its polls, not the sum of the builds.
//
//   - scale: one worker OS process with 10 000 deploys in flight at once,
//     all waiting in wait_ready for long builds. The worker runs as a child
//     process (this binary re-executed in a hidden mode) so that its
//     resident memory and CPU time are its own; the parent runs the
//     nats-server and the simulator, which would otherwise dominate both.
//     Once every deployment exists, the parent samples the child's RSS
//     (/proc/<pid>/status), CPU time (/proc/<pid>/stat), goroutines and heap
//     (the child's /metrics) and its NATS traffic (the server's view of the
//     child's connection) for a fixed window.
//
// Usage:
//
//	go run ./cmd/bench scale            # both, one after the other (about 5 minutes)
//	go run ./cmd/bench scale requests   # only the request counts (about 4 minutes)
//	go run ./cmd/bench scale scale      # only the 10 000 jobs in flight (about 1.5 minutes)
//	go run ./cmd/bench scale scale -jobs 2000 -child-memprofile /tmp/heap.pprof
//
// The results are printed as Markdown tables, with the machine they were
// measured on, and written to docs/benchmarks/scalebench.json (-out names
// the directory). Running one part alone rewrites only that part of the
// file. Every server listens on 127.0.0.1 only and every wait has a
// timeout. The worker process is stopped with SIGTERM and killed if it is
// still running after its grace plus a minute; should the parent die
// first, the worker's stdin closes and it shuts down by itself.
//
// A heap profile of the worker process, taken right after a collection at
// the end of the window, is written with -child-memprofile; read it with
// go tool pprof -top -sample_index=inuse_space <file>. After the window the
// parent also asks the worker to return all free memory to the OS
// (debug.FreeOSMemory, three times) and looks once more: a diagnostic that
// separates what the jobs hold from the garbage and grown goroutine stacks
// the ramp-up left behind. -child-gogc and -child-gomemlimit set the
// worker's GOGC and GOMEMLIMIT.
//
// No API budget is configured in either part: the simulator enforces no
// rate limits here, so a budget would only add NATS traffic, and the
// request counts are those the pipeline itself needs.
package scale
