package budget

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/internal/stack"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// tenant and team of every request: one tenant, one Vercel team, so every
// process spends the same per-team limits.
const (
	benchTenant = "bench"
	benchTeam   = "team_budgetbench"
)

// Bounds on the steps around the measurement, so a stuck piece fails the
// run instead of hanging it.
const (
	readyTimeout  = 60 * time.Second
	submitTimeout = 30 * time.Second
	// stopTimeout covers a worker's shutdown grace and its NATS drain.
	stopTimeout    = childShutdownGrace + 25*time.Second
	progressPeriod = 15 * time.Second
)

// runSetup is what one strategy's run needs besides the options.
type runSetup struct {
	strategy strategy
	exe      string // this binary, re-executed as each worker process
	dir      string // the strategy's temporary directory
	tarball  []byte
	seed     int64
	progress io.Writer
}

// runData is what one run measured, before any arithmetic.
type runData struct {
	strategy  strategy
	submitted map[string]time.Time // request id → just before Submit
	terminal  map[string]jobs.Event
	missing   []string // ids with no terminal event by the timeout
	timedOut  bool
	stats     vercelsim.Stats
	trace     map[vercel.Endpoint]endpointTrace
	exits     []string // how each worker process ended
	logPath   string
	problems  []string // anything that makes the run suspect
}

// runStrategy runs one strategy from a fresh NATS store and a fresh
// simulator to the simulator's final counters.
func runStrategy(ctx context.Context, o options, rs runSetup) (*runData, error) {
	d := &runData{strategy: rs.strategy, submitted: map[string]time.Time{}, terminal: map[string]jobs.Event{},
		logPath: filepath.Join(rs.dir, "workers.log")}

	setupCtx, cancel := context.WithTimeout(ctx, submitTimeout)
	defer cancel()
	st, err := stack.Start(setupCtx, stack.Config{Dir: rs.dir, Name: "budgetbench", Role: "producer"})
	if err != nil {
		return d, err
	}
	defer st.Close()
	client, err := jobs.NewClient(setupCtx, st.JS, jobs.ClientConfig{})
	if err != nil {
		return d, err
	}

	sim := vercelsim.New(vercelsim.Config{
		BuildTime:   o.buildTime,
		BuildJitter: o.buildJitter,
		RateLimits:  stack.SimLimits(o.limits),
		Token:       simToken,
		TeamID:      benchTeam,
		Seed:        rs.seed,
	})
	rec := newRecorder(sim, time.Now, o.stripHeaders)
	simURL, stopSim, err := stack.ServeLoopback(rec, nil)
	if err != nil {
		return d, err
	}
	defer stopSim()
	defer sim.Close()

	logFile, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return d, err
	}
	defer logFile.Close()
	fleet, err := startWorkers(ctx, o, rs, st.NATS.ClientURL(), simURL, logFile)
	defer func() { d.exits = fleet.stop() }()
	if err != nil {
		return d, err
	}

	if err := measure(ctx, o, rs, client, d); err != nil {
		return d, err
	}
	d.exits = fleet.stop()
	d.stats = sim.Stats()
	d.trace = rec.snapshot()
	d.problems = append(d.problems, crossCheck(d.stats, d.trace)...)
	for i, e := range d.exits {
		if e != bench.ExitOK {
			d.problems = append(d.problems, fmt.Sprintf("worker process %d: %s", i, e))
		}
	}
	return d, nil
}

// measure submits the requests and collects their terminal events. The
// follower starts before the first submit, so no event can be missed.
func measure(ctx context.Context, o options, rs runSetup, client *jobs.Client, d *runData) error {
	f, err := bench.Follow(ctx, client, benchTenant, o.n)
	if err != nil {
		return err
	}
	defer f.Stop()
	want := make(map[string]bool, o.n)
	for i := range o.n {
		id := fmt.Sprintf("bench-%s-%04d", rs.strategy, i)
		req := jobs.Request{ID: id, Tenant: benchTenant, Name: "budgetbench", Framework: "nextjs"}
		sctx, cancel := context.WithTimeout(ctx, submitTimeout)
		d.submitted[id] = time.Now()
		want[id] = true
		_, err := client.Submit(sctx, req, rs.tarball)
		cancel()
		if err != nil {
			return fmt.Errorf("submit %s: %w", id, err)
		}
	}

	got, missing, err := f.Await(ctx, want, o.timeout, progressPeriod, func(ended int) {
		fmt.Fprintf(rs.progress, "budgetbench: %-6s %d/%d requests ended\n", rs.strategy, ended, o.n)
	})
	for id, e := range got {
		d.terminal[id] = e.Event
	}
	if len(missing) > 0 {
		d.timedOut, d.missing = true, missing
		fmt.Fprintf(rs.progress, "budgetbench: %s: after %s, %d of %d requests have no terminal event\n",
			rs.strategy, o.timeout, len(missing), o.n)
	}
	return err
}

// crossCheck compares the recorder's counts with the simulator's. They
// differ only if the recorder's route table no longer matches the
// simulator's, or a request was still in flight at the snapshot.
func crossCheck(st vercelsim.Stats, trace map[vercel.Endpoint]endpointTrace) []string {
	var out []string
	for _, ep := range vercel.Endpoints() {
		t := trace[ep]
		if t.Succeeded != st.Succeeded[ep] || t.RateLimited != st.RateLimited[ep] || t.Requests+st.Abandoned[ep] != st.Requests[ep] {
			out = append(out, fmt.Sprintf("%s: recorder saw %d requests (%d ok, %d 429), simulator %d (%d ok, %d 429)",
				ep, t.Requests, t.Succeeded, t.RateLimited, st.Requests[ep], st.Succeeded[ep], st.RateLimited[ep]))
		}
	}
	return out
}
