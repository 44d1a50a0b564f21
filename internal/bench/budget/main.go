// Package budget is the benchmark `bench budget` (cmd/bench). It measures,
// side by side in one run, three ways of spending Vercel's per-endpoint
// rate limits with a fleet of worker processes:
//
//   - shared: deployq's budget, whose buckets every process shares through
//     the NATS KV bucket DEPLOY_BUDGET;
//   - local: the same budget code over per-process buckets that share
//     nothing, so each process believes it owns the whole limit;
//   - guide: the Prisma guide's strategy, with no bucket at all: on a 429,
//     sleep 2^attempt seconds (1, 2, 4) and give up after 3 retries.
//
// Each strategy gets a fresh embedded nats-server, a fresh Vercel simulator
// with the same limits and build times, and its own worker OS processes
// (this binary re-executed in a hidden child mode). The parent submits the
// same deploys to each, follows their terminal events, then reads the
// simulator's counters. It prints a table, writes the results as JSON and
// draws an SVG of the bottleneck endpoint's calls per second.
//
//	go run ./cmd/bench budget                    # defaults: 300 deploys per strategy
//	go run ./cmd/bench budget -n 100 -build-time 5s -strategies shared,guide
//
// docs/BENCHMARKS.md explains what is measured and how to read it.
package budget

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/vercel"
)

// options is the parent's command line, parsed.
type options struct {
	n            int
	strategies   []strategy
	processes    int
	concurrency  int
	buildTime    time.Duration
	buildJitter  time.Duration
	limitSpec    string
	limits       map[vercel.Endpoint]budget.Limit
	bottleneck   vercel.Endpoint
	timeout      time.Duration
	sequential   bool
	seed         int64
	smooth       int
	jsonOut      string
	svgOut       string
	keep         bool
	replot       string
	stripHeaders bool
	command      string
}

// childOptions is what the parent passes to each worker process.
type childOptions struct {
	natsURL     string
	simURL      string
	strategy    strategy
	concurrency int
	limitSpec   string
	team        string
	buildTime   time.Duration
	index       int
}

// Main reads the command line (what follows "bench budget") and runs the
// benchmark, a worker process or a replot; it returns the exit code (2
// for usage errors).
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fs := flag.NewFlagSet("bench budget", flag.ContinueOnError)
	var (
		o          options
		c          childOptions
		child      bool
		strategies string
	)
	fs.IntVar(&o.n, "n", 300, "deploy requests submitted per strategy")
	fs.StringVar(&strategies, "strategies", "shared,local,guide", "strategies to run, comma-separated (shared, local, guide)")
	fs.IntVar(&o.processes, "processes", 3, "worker OS processes per strategy")
	fs.IntVar(&o.concurrency, "concurrency", 16, "jobs run at once by each worker process")
	fs.DurationVar(&o.buildTime, "build-time", 20*time.Second, "simulated build time")
	fs.DurationVar(&o.buildJitter, "build-jitter", 2*time.Second, "uniform random [0, jitter) added to each build")
	fs.StringVar(&o.limitSpec, "limits", "all=50/10s,deployments.create=20/10s",
		"rate limits the simulator enforces and the budgets are configured with (endpoint=N/window, \"all\" for every endpoint)")
	bottleneck := fs.String("bottleneck", string(vercel.EndpointCreateDeployment), "endpoint whose utilization is reported and plotted")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "longest wait, per strategy, for every terminal event")
	fs.BoolVar(&o.sequential, "sequential", false, "run the strategies one after another instead of at the same time")
	fs.Int64Var(&o.seed, "seed", 0, "simulator seed shared by every strategy; 0 draws one")
	fs.IntVar(&o.smooth, "smooth", 5, "seconds of the centred moving average drawn in the plot")
	fs.StringVar(&o.jsonOut, "json", "docs/benchmarks/budget.json", "results file (JSON); empty to skip")
	fs.StringVar(&o.svgOut, "svg", "docs/benchmarks/budget.svg", "plot file (SVG); empty to skip")
	fs.BoolVar(&o.stripHeaders, "strip-ratelimit-headers", false,
		"remove X-RateLimit-* from the simulator's answers (Vercel does not document them), leaving 429s, Retry-After and the body")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (NATS stores, worker logs) even after a clean run")
	fs.StringVar(&o.replot, "replot", "", "measure nothing: redraw -svg from this results file (JSON) and print its tables")

	fs.BoolVar(&child, "child", false, "run as one worker process of a strategy")
	fs.StringVar(&c.natsURL, "nats-url", "", "child: NATS server URL")
	fs.StringVar(&c.simURL, "sim-url", "", "child: simulator base URL")
	childStrategy := fs.String("strategy", "", "child: strategy")
	fs.StringVar(&c.team, "team-id", "", "child: Vercel team id")
	fs.IntVar(&c.index, "index", 0, "child: process number, for logs")
	fs.Usage = func() { usage(fs, stderr) }

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.replot != "" {
		return replot(o, stdout, stderr)
	}
	if child {
		c.strategy = strategy(*childStrategy)
		// The child shares these flags with the parent, which passes its
		// own values on, so both sides always agree on them.
		c.concurrency = o.concurrency
		c.buildTime = o.buildTime
		c.limitSpec = o.limitSpec
		return runChild(ctx, c, stdout, stderr)
	}

	var err error
	if o.strategies, err = parseStrategies(strategies); err != nil {
		fmt.Fprintf(stderr, "bench budget: -strategies: %v\n", err)
		return 2
	}
	if o.limits, err = budget.ParseLimits(o.limitSpec); err != nil {
		fmt.Fprintf(stderr, "bench budget: -limits: %v\n", err)
		return 2
	}
	o.command = "make bench-budget"
	if len(args) > 0 {
		o.command = bench.CommandLine(append([]string{"budget"}, args...)...)
	}
	o.bottleneck = vercel.Endpoint(*bottleneck)
	if _, ok := o.limits[o.bottleneck]; !ok {
		fmt.Fprintf(stderr, "bench budget: -bottleneck %s has no limit in -limits\n", o.bottleneck)
		return 2
	}
	if o.n < 1 || o.processes < 1 || o.concurrency < 1 || o.smooth < 1 {
		fmt.Fprintln(stderr, "bench budget: -n, -processes, -concurrency and -smooth must be at least 1")
		return 2
	}
	return run(ctx, o, stdout, stderr)
}

// usage lists the parent's flags only: the worker mode's flags are passed
// by the parent, never typed.
func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintln(w, "usage: bench budget [flags]")
	hidden := map[string]bool{"child": true, "nats-url": true, "sim-url": true, "strategy": true, "team-id": true, "index": true}
	fs.VisitAll(func(f *flag.Flag) {
		if hidden[f.Name] {
			return
		}
		fmt.Fprintf(w, "  -%s\n    \t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
	})
}

func parseStrategies(s string) ([]strategy, error) {
	var out []strategy
	seen := map[strategy]bool{}
	for name := range strings.SplitSeq(s, ",") {
		st := strategy(strings.TrimSpace(name))
		if !st.valid() {
			return nil, fmt.Errorf("unknown strategy %q (want shared, local or guide)", st)
		}
		if !seen[st] {
			seen[st] = true
			out = append(out, st)
		}
	}
	return out, nil
}
