// Package fair is `bench fair`: fair dispatch across tenants against the
// arrival order deployq used before (jobs.SetupConfig.ArrivalOrder), side
// by side in one run, each on a deployq of its own (embedded NATS, the
// simulator with Vercel-like limits, a shared budget with the same
// limits, one worker). Four parts (-parts picks):
//
//   - A noisy neighbour: tenant big submits a burst, then tenant small
//     submits one deploy; small's time from submit to its terminal event.
//   - Skewed tenants: ten tenants submit at once, one of them half of all
//     the requests, the others in equal parts, in random order; over each
//     window of the run in which every tenant still had requests not
//     ended, Jain's fairness index of the deploys each completed; and the
//     throughput of the whole run.
//   - The crowd (crowd.go): 100 000 requests of 1 000 tenants queued in
//     front of one worker process of its own (this binary again, mode
//     child); its memory and the cost of its dispatch decisions.
//   - The cluster (cluster.go): what 1 000 tenants' consumers cost a
//     3-node cluster, on which each is a Raft group.
//
// Run it with:
//
//	go run ./cmd/bench fair
//
// docs/BENCHMARKS.md records a run and how to read it.
package fair
