// Package critpath is `bench path`: the time from submit to claim URL at low
// load, with the calls sent at their own steps one after another
// (worker.PipelineConfig.Sequential) and with those that depend on nothing
// before them sent ahead (the default), side by side in one run, each on
// a deployq of its own: embedded NATS, the simulator with a latency per
// endpoint (a database takes seconds to provision, the other calls a few
// hundred milliseconds) and a fixed build time, one worker told the build
// time. Deploys are submitted one at a time, each after the previous
// ended, so nothing waits for anything but its own calls; the first ones
// (-warmup) are not measured, so that the worker's build-time estimate
// has settled, as a running worker's has.
//
// The target is the build time, plus the longest chain of dependent calls
// (the database's authorization or the project, the database, its
// connection, the deployment, the status poll that sees it ready), plus
// 100 ms.
//
// Run it with:
//
//	go run ./cmd/bench path
//
// docs/BENCHMARKS.md records a run and how to read it.
package critpath
