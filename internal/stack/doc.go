// Package stack assembles a running deployq on one machine: an embedded
// nats-server on loopback TCP with deployq's streams and buckets, the
// Vercel simulator served on 127.0.0.1, and worker pools over them. The
// test harness (pkg/jobs/jobstest), the benchmarks (cmd/bench) and the
// chaos test build on it instead of wiring the pieces by hand; everything
// it starts listens on loopback only.
package stack
