// Package chaos holds deployq's chaos test: a whole fleet run under
// failures, checked against the guarantees of docs/RELIABILITY.md.
//
// TestChaos starts a 3-node NATS cluster (R3 streams) and the Vercel
// simulator in the test process, and three worker OS processes built from
// cmd/worker. It submits a batch of deploy requests, a few of them doomed
// to fail their build, and while they run it SIGKILLs a random worker every
// few seconds (starting a fresh one in its place), stops and restarts the
// NATS node that leads the requests stream once, and lets the simulator
// answer 5xx before and after side effects, add latency and refuse calls
// with 429. At the end it checks that every request has exactly one
// terminal event, that the simulator holds at most one project, one
// database and one READY deployment per request, and that the DLQ holds
// exactly the requests made to fail or rejected. It prints the counts.
//
// Variants:
//
//	go test ./chaos/                          short: 60 deploys and 2 invalid requests, 1–2 minutes (make test)
//	DEPLOYQ_CHAOS=long go test -v ./chaos/    long: 300 deploys and 2 invalid requests, about 6 minutes (make chaos)
//	DEPLOYQ_CHAOS_REQUESTS=120 go test ./chaos/   the short schedule with another number of deploys
//	go test -short ./chaos/                   skipped
//
// Worker logs (JSON, one file per worker process) go to the test's
// artifact directory: add -artifacts (and -outputdir DIR) to keep them.
// On failure the test names each log file and quotes its last lines.
package chaos
