package load

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/deployq/deployq/internal/bench"
)

// options is the command line, parsed.
type options struct {
	n           int
	concurrency int
	producers   int
	warm        int
	rounds      int

	rawN       int
	rawBatch   int
	rawPending int

	submitN1         int
	submitN          int
	submitGoroutines int
	submitBatch      int

	latencyLoad        float64
	latencyRate        float64
	latencyBuild       time.Duration
	latencyJitter      time.Duration
	latencyDuration    time.Duration
	latencyWarmup      time.Duration
	latencyConcurrency int
	latencyInflight    int
	skipLatency        bool

	cpuProfile string
	memProfile string
	profileDir string

	outDir  string
	timeout time.Duration
	seed    int64
	keep    bool
	command string
}

// Main parses args (what follows "bench load") and runs the benchmark;
// it returns the exit code (2 for usage errors, 1 when a measurement
// failed).
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench load: %v\n", err)
		return 2
	}
	return run(ctx, o, stdout, stderr)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.n, "n", 2000, "jobs per timed run of the queue-overhead comparison (item 1)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "jobs in flight in item 1: worker slots (a) and Deploy goroutines (b)")
	fs.IntVar(&o.producers, "producers", 8, "goroutines calling Submit in item 1(a)")
	fs.IntVar(&o.warm, "warmup", 0, "untimed jobs before each timed run of item 1; 0 means 2 × -concurrency")
	fs.IntVar(&o.rounds, "k", 3, "rounds: each runs (a), (b), the broker baseline and the submit figures once, interleaved")
	fs.IntVar(&o.rawN, "raw-n", 200000, "messages per broker-baseline measurement (item 2)")
	fs.IntVar(&o.rawBatch, "raw-batch", 256, "Fetch batch of the broker's consume + ack")
	fs.IntVar(&o.rawPending, "raw-pending", 4096, "most async publishes awaiting their ack")
	fs.IntVar(&o.submitN1, "submit-n1", 500, "requests submitted by one goroutine (item 3)")
	fs.IntVar(&o.submitN, "submit-n", 2000, "requests submitted by -submit-goroutines goroutines (item 3)")
	fs.IntVar(&o.submitGoroutines, "submit-goroutines", 32, "goroutines calling Submit, and SubmitBatch, at once (item 3)")
	fs.IntVar(&o.submitBatch, "submit-batch", 1000, "most requests per SubmitBatch call (item 3); fewer when the goroutines would otherwise go without")
	fs.Float64Var(&o.latencyLoad, "latency-load", 0.5, "item 4's arrival rate as a fraction of the median jobs/s of item 1(a)")
	fs.Float64Var(&o.latencyRate, "latency-rate", 0, "item 4's arrival rate in jobs/s; overrides -latency-load")
	fs.DurationVar(&o.latencyBuild, "latency-build", 2*time.Second, "simulated build time in item 4")
	fs.DurationVar(&o.latencyJitter, "latency-build-jitter", 0, "uniform random [0, jitter) added to each build in item 4")
	fs.DurationVar(&o.latencyDuration, "latency-duration", 15*time.Second, "arrivals counted in item 4")
	fs.DurationVar(&o.latencyWarmup, "latency-warmup", 3*time.Second, "arrivals before the counted ones in item 4, at the same rate")
	fs.IntVar(&o.latencyConcurrency, "latency-concurrency", 0, "worker slots in item 4; 0 sizes them from the rate and the build time")
	fs.IntVar(&o.latencyInflight, "latency-inflight", 256, "most Submit calls at once in item 4")
	fs.BoolVar(&o.skipLatency, "skip-latency", false, "skip item 4")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of one extra item-1(a) run to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile at the end of that run to this file (and one at its start to FILE-base)")
	fs.StringVar(&o.profileDir, "profile-dir", "",
		"profile one extra run of each of item 1(a) and 1(b) into this directory: queued-cpu.pprof, queued-mem.pprof, direct-cpu.pprof, …")
	fs.StringVar(&o.outDir, "outdir", "docs/benchmarks", "directory for loadbench.json; empty to skip")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "longest wait for one run's jobs or messages")
	fs.Int64Var(&o.seed, "seed", 0, "simulator seed; 0 draws one (recorded in the JSON)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary NATS stores")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.n < 1 || o.concurrency < 1 || o.producers < 1 || o.rounds < 1 || o.warm < 0:
		return o, errors.New("-n, -concurrency, -producers and -k must be at least 1, -warmup at least 0")
	case o.rawN < 1 || o.rawBatch < 1 || o.rawPending < 1:
		return o, errors.New("-raw-n, -raw-batch and -raw-pending must be at least 1")
	case o.submitN1 < 1 || o.submitN < 1 || o.submitGoroutines < 1 || o.submitBatch < 1:
		return o, errors.New("-submit-n1, -submit-n, -submit-goroutines and -submit-batch must be at least 1")
	case o.latencyLoad <= 0 && o.latencyRate <= 0:
		return o, errors.New("-latency-load or -latency-rate must be positive")
	case o.latencyBuild <= 0 || o.latencyDuration <= 0 || o.latencyWarmup < 0 || o.latencyJitter < 0:
		return o, errors.New("-latency-build and -latency-duration must be positive, -latency-warmup and -latency-build-jitter not negative")
	}
	if o.warm == 0 {
		o.warm = 2 * o.concurrency
	}
	if o.profileDir != "" {
		if o.cpuProfile == "" {
			o.cpuProfile = filepath.Join(o.profileDir, "queued-cpu.pprof")
		}
		if o.memProfile == "" {
			o.memProfile = filepath.Join(o.profileDir, "queued-mem.pprof")
		}
	}
	o.command = bench.CommandLine(append([]string{"load"}, args...)...)
	return o, nil
}
