package budget

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"github.com/deployq/deployq/internal/bench"
)

// fleet is the worker processes of one strategy.
type fleet struct {
	procs []*bench.Process
	exits []string // how each ended, once stopped
}

// startWorkers starts the worker processes and returns once each has said
// it takes work. On an error the fleet, if any, still needs stop.
func startWorkers(ctx context.Context, o options, rs runSetup, natsURL, simURL string, logFile *os.File) (*fleet, error) {
	f := &fleet{}
	for i := range o.processes {
		cmd := exec.Command(rs.exe, "budget",
			"-child",
			"-strategy", string(rs.strategy),
			"-nats-url", natsURL,
			"-sim-url", simURL,
			"-team-id", benchTeam,
			"-limits", o.limitSpec,
			"-concurrency", strconv.Itoa(o.concurrency),
			"-build-time", o.buildTime.String(),
			"-index", strconv.Itoa(i),
		)
		cmd.Stderr = logFile
		p, err := bench.StartProcess(cmd)
		if err != nil {
			return f, fmt.Errorf("worker process: %w", err)
		}
		f.procs = append(f.procs, p)
	}
	// They start at once; each is waited for in turn.
	for _, p := range f.procs {
		line, err := p.Ready(ctx, readyTimeout)
		if err != nil {
			return f, err
		}
		if line != readyLine {
			return f, fmt.Errorf("a worker process exited before taking work (said %q)", line)
		}
	}
	return f, nil
}

// stop sends SIGTERM to every process and waits for them, killing those
// still running after stopTimeout. It reports how each ended; later calls
// return the same report.
func (f *fleet) stop() []string {
	if f == nil {
		return nil
	}
	if f.exits == nil {
		f.exits = bench.StopProcesses(stopTimeout, f.procs...)
	}
	return f.exits
}
