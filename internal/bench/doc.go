// Package bench holds what the benchmarks (load, scale and budget, the
// packages below this one, run as cmd/bench's subcommands) share: a description of the machine the
// figures come from, worker processes started with pipes to their stdin
// and stdout, and a follower of a tenant's terminal events that waits for
// a set of requests to end. The server, the simulator and the workers
// they measure come from internal/stack.
//
// Each program keeps its own report format; this package only removes the
// plumbing they would otherwise write three times.
package bench
