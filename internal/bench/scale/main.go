package scale

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
)

// The modes, named by the first argument. "child" is the worker process
// of the scale part; it is started by the parent and not listed in usage.
const (
	modeBoth     = ""
	modeRequests = "requests"
	modeScale    = "scale"
	modeChild    = "child"
)

// options is the parent's command line, parsed. One flag set covers both
// parts, so `scalebench -deploys 20 -jobs 2000` tunes both in one run.
type options struct {
	mode    string
	outDir  string
	keep    bool
	seed    int64
	command string

	// The requests part.
	builds         []time.Duration
	jitterRatio    float64
	deploys        int
	sources        int
	concurrency    int
	timeout        time.Duration
	requestsTarget float64

	// The scale part.
	jobs            int
	scaleBuild      time.Duration
	scaleExpected   time.Duration
	scaleSources    int
	maxAckPending   int
	submitParallel  int
	rampTimeout     time.Duration
	settle          time.Duration
	sample          time.Duration
	sampleEvery     time.Duration
	childGrace      time.Duration
	childMemProfile string
	childGOGC       string
	childMemLimit   string
	rssTargetMB     float64
}

// Main dispatches on the mode (what follows "bench scale") and returns
// the exit code: 0 when every part was measured (whether or not its
// targets hold: missing a target is a result, not a failure), 1 when a
// part could not be measured, 2 for usage errors.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	mode := modeBoth
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	switch mode {
	case modeChild:
		return runChild(ctx, args, stdout, stderr)
	case modeBoth, modeRequests, modeScale:
	default:
		fmt.Fprintf(stderr, "bench scale: unknown mode %q (want requests or scale, or none for both)\n", mode)
		return 2
	}
	o, err := parseOptions(mode, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench scale: %v\n", err)
		return 2
	}
	return run(ctx, o, stdout, stderr)
}

func parseOptions(mode string, args []string, stderr io.Writer) (options, error) {
	o := options{mode: mode}
	fs := flag.NewFlagSet("bench scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.outDir, "out", "docs/benchmarks", "directory of scalebench.json; empty to write nothing")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (NATS stores, worker logs) after a clean run")
	fs.Int64Var(&o.seed, "seed", 0, "simulator seed; 0 draws one (recorded in the JSON)")

	builds := fs.String("builds", "20s,60s,180s", "requests: simulated build times, comma-separated")
	fs.Float64Var(&o.jitterRatio, "jitter", 0.2, "uniform random [0, jitter × build time) added to each build, in both parts")
	fs.IntVar(&o.deploys, "deploys", 40, "requests: deploys per configuration")
	fs.IntVar(&o.sources, "sources", 4, "requests: distinct source tarballs per configuration, shared round-robin by the deploys")
	fs.IntVar(&o.concurrency, "concurrency", 0, "requests: the worker's concurrency; 0 runs every deploy at once")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "requests: longest wait for every terminal event, per configuration")
	fs.Float64Var(&o.requestsTarget, "requests-target", 8, "requests: target of API requests per successful deploy, on average")

	fs.IntVar(&o.jobs, "jobs", 10000, "scale: deploys in flight at once in the one worker process (its concurrency)")
	fs.DurationVar(&o.scaleBuild, "scale-build", 10*time.Minute, "scale: simulated build time; long enough that no build ends before the sampling does")
	fs.DurationVar(&o.scaleExpected, "scale-expected-build", 0, "scale: the worker's expected build time; 0 sets the true build time, so no status poll falls in the window")
	fs.IntVar(&o.scaleSources, "scale-sources", 10, "scale: distinct source tarballs")
	fs.IntVar(&o.maxAckPending, "max-ack-pending", 0, "scale: each tenant's consumer's MaxAckPending; 0 sets jobs + 10 %")
	fs.IntVar(&o.submitParallel, "submit-parallel", 64, "scale: submits in flight at once")
	fs.DurationVar(&o.rampTimeout, "ramp-timeout", 8*time.Minute, "scale: longest wait for every deployment to exist")
	fs.DurationVar(&o.settle, "settle", 10*time.Second, "scale: pause between the last deployment created and the first sample")
	fs.DurationVar(&o.sample, "sample", 60*time.Second, "scale: sampling window")
	fs.DurationVar(&o.sampleEvery, "sample-every", 5*time.Second, "scale: time between samples")
	fs.DurationVar(&o.childGrace, "child-grace", 5*time.Second, "scale: the worker's shutdown grace after SIGTERM, before it hands its jobs back")
	fs.StringVar(&o.childMemProfile, "child-memprofile", "", "scale: write the worker's heap profile here at the end of the sampling window")
	fs.StringVar(&o.childGOGC, "child-gogc", "", "scale: GOGC of the worker process; empty inherits this one's")
	fs.StringVar(&o.childMemLimit, "child-gomemlimit", "", "scale: GOMEMLIMIT of the worker process (e.g. 250MiB); empty inherits this one's")
	fs.Float64Var(&o.rssTargetMB, "rss-target", 300, "scale: target of the worker's resident memory, in MB (10^6 bytes)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench scale [requests|scale] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.builds, err = parseDurations(*builds); err != nil {
		return o, fmt.Errorf("-builds: %w", err)
	}
	switch {
	case o.deploys < 1 || o.sources < 1 || o.jobs < 1 || o.scaleSources < 1 || o.submitParallel < 1:
		return o, errors.New("-deploys, -sources, -jobs, -scale-sources and -submit-parallel must be at least 1")
	case o.concurrency < 0 || o.maxAckPending < 0:
		return o, errors.New("-concurrency and -max-ack-pending must not be negative")
	case o.jitterRatio < 0:
		return o, errors.New("-jitter must not be negative")
	case o.sample <= 0 || o.sampleEvery <= 0 || o.sampleEvery > o.sample:
		return o, errors.New("-sample and -sample-every must be positive, -sample-every at most -sample")
	case o.scaleBuild <= 0:
		return o, errors.New("-scale-build must be positive")
	}
	if o.concurrency == 0 {
		o.concurrency = o.deploys
	}
	if o.scaleExpected == 0 {
		o.scaleExpected = o.scaleBuild
	}
	if o.maxAckPending == 0 {
		// The consumer refuses deliveries beyond MaxAckPending; its default
		// (10 000) is exactly the scale part's default concurrency, and
		// jobs.SetupConfig asks for it to exceed the fleet's concurrency.
		o.maxAckPending = o.jobs + max(o.jobs/10, 1)
	}
	o.command = scaleCommand(mode, args)
	return o, nil
}

// parseDurations reads "20s,60s,180s".
func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil {
			return nil, err
		}
		if d <= 0 {
			return nil, fmt.Errorf("%s: a build time must be positive", part)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("no build time given")
	}
	return out, nil
}

// scaleCommand is how to repeat this run: the mode is named unless both
// parts ran.
func scaleCommand(mode string, args []string) string {
	words := []string{"scale"}
	if mode != modeBoth {
		words = append(words, mode)
	}
	return bench.CommandLine(append(words, args...)...)
}
