package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/internal/stack"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// workerStopTimeout bounds an in-process worker's shutdown: by then every
// job has ended, so only its background loops have to notice.
const workerStopTimeout = 30 * time.Second

// requestsWorkerGrace is the in-process workers' shutdown grace.
const requestsWorkerGrace = 5 * time.Second

// buildCase is one configuration of the requests part: a build time, and
// whether the worker is told it.
type buildCase struct {
	build time.Duration
	// told sets PipelineConfig.ExpectedBuild to the build time; otherwise
	// it stays zero, as a freshly started worker has it: the estimate is
	// cold until a build was seen.
	told bool
}

// tag says which expectation the worker starts with.
func (c buildCase) tag() string {
	if c.told {
		return "told"
	}
	return "default"
}

func (c buildCase) name() string { return c.build.String() + "/" + c.tag() }

// expectedBuildSetting is the value of PipelineConfig.ExpectedBuild.
func (c buildCase) expectedBuildSetting() time.Duration {
	if c.told {
		return c.build
	}
	return 0
}

// expected names the build time the worker starts out expecting.
func (c buildCase) expected() string {
	if c.told {
		return c.build.String()
	}
	return noExpectation
}

// firstPoll says when a deployment's first poll comes: the expected build
// plus a tenth, or, for a worker that expects nothing, after the first
// build a scout followed.
func (c buildCase) firstPoll() string {
	if !c.told {
		return "cold"
	}
	return (c.build + c.build/10).String()
}

// caseData is what one configuration measured, before any arithmetic.
type caseData struct {
	c         buildCase
	jitter    time.Duration
	submitted map[string]time.Time // request id → just before Submit
	terminal  map[string]jobs.Event
	missing   []string
	timedOut  bool
	stats     vercelsim.Stats
	rec       recorded
	sources   []string // SHA-1 of each source tarball, in order
	perSource []int    // deploys of each source
	// learned is the pipeline's build-time estimate after the run: where
	// the next deploy's first poll would be aimed.
	learned  time.Duration
	problems []string
}

// runRequests runs every configuration at once and summarizes them.
func runRequests(ctx context.Context, o options, seed int64, dir string, progress io.Writer) (*requestsReport, error) {
	var cases []buildCase
	for _, b := range o.builds {
		cases = append(cases, buildCase{build: b}, buildCase{build: b, told: true})
	}
	rep := &requestsReport{
		Machine: bench.DescribeMachine(time.Now()),
		Command: o.command,
		Settings: requestsSettings{
			JitterRatio: o.jitterRatio, Deploys: o.deploys, Sources: o.sources,
			Concurrency: o.concurrency, Seed: seed, Timeout: o.timeout.String(),
			RequestsTarget: o.requestsTarget, DefaultExpectedBuild: noExpectation,
		},
	}
	for _, b := range o.builds {
		rep.Settings.Builds = append(rep.Settings.Builds, b.String())
	}
	fmt.Fprintf(progress, "scalebench: requests: %d configurations at once, %d deploys each over %d sources; temporary files in %s\n",
		len(cases), o.deploys, o.sources, dir)

	tgz := tarballs(o.sources)
	data := make([]*caseData, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() {
			cdir := filepath.Join(dir, fmt.Sprintf("%02d-%s-%s", i, c.build, c.tag()))
			if err := os.MkdirAll(cdir, 0o755); err != nil {
				errs[i] = err
				return
			}
			data[i], errs[i] = runCase(ctx, o, c, seed, cdir, tgz, progress)
			fmt.Fprintf(progress, "scalebench: requests: %s done\n", c.name())
		})
	}
	wg.Wait()

	var failed []error
	for i, d := range data {
		if errs[i] != nil {
			failed = append(failed, fmt.Errorf("%s: %w", cases[i].name(), errs[i]))
		}
		if d != nil && errs[i] == nil {
			rep.Results = append(rep.Results, summarizeCase(d, o.requestsTarget))
		}
	}
	return rep, errors.Join(failed...)
}

// runCase runs one configuration from a fresh NATS store and a fresh
// simulator to the simulator's final counters.
func runCase(ctx context.Context, o options, c buildCase, seed int64, dir string, tgz [][]byte, progress io.Writer) (*caseData, error) {
	d := &caseData{c: c, jitter: jitterOf(c.build, o.jitterRatio),
		submitted: map[string]time.Time{}, terminal: map[string]jobs.Event{}}
	for _, t := range tgz {
		d.sources = append(d.sources, vercel.SHA1Hex(t))
	}
	d.perSource = make([]int, len(tgz))

	b, err := startBroker(ctx, dir, jobs.SetupConfig{})
	if err != nil {
		return nil, err
	}
	defer b.close()
	srv, js := b.srv, b.js
	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	client, err := jobs.NewClient(setupCtx, js, jobs.ClientConfig{})
	if err != nil {
		return nil, err
	}

	sim := vercelsim.New(vercelsim.Config{
		BuildTime: c.build, BuildJitter: d.jitter,
		Token: simToken, TeamID: benchTeam, Seed: seed,
	})
	rec := newRecorder(sim)
	simURL, stopSim, err := stack.ServeLoopback(rec, nil)
	if err != nil {
		return nil, err
	}
	defer stopSim()
	defer sim.Close()

	logFile, err := os.Create(filepath.Join(dir, "worker.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	stopWorker, estimate, err := startInProcessWorker(ctx, setupCtx, srv.ClientURL(), workerParts{
		simURL:        simURL,
		expectedBuild: c.expectedBuildSetting(),
		concurrency:   o.concurrency,
		owner:         "scalebench-" + c.name(),
		grace:         requestsWorkerGrace,
		log:           slog.New(slog.NewTextHandler(logFile, nil)).With("case", c.name()),
	})
	if err != nil {
		return nil, err
	}
	defer stopWorker()

	if err := collect(ctx, o, c, client, tgz, d, progress); err != nil {
		return d, err
	}
	if err := stopWorker(); err != nil {
		d.problems = append(d.problems, err.Error())
	}
	d.learned = estimate()
	d.stats = sim.Stats()
	d.rec = rec.snapshot()
	if total := totalRequests(d.stats); int64(total) != d.rec.Requests {
		d.problems = append(d.problems, fmt.Sprintf("the recorder saw %d requests, the simulator %d", d.rec.Requests, total))
	}
	if d.timedOut {
		d.problems = append(d.problems, fmt.Sprintf("%d requests had no terminal event after %s", len(d.missing), o.timeout))
	}
	return d, nil
}

// startInProcessWorker runs a worker pool in this process over its own
// TCP connection to the server, as a worker process would connect. The
// returned stop function cancels it and waits for it (bounded); it may be
// called more than once. estimate reads the worker's build-time estimate
// from its metrics (deployq_build_time_estimate_seconds).
func startInProcessWorker(ctx, setupCtx context.Context, natsURL string, wp workerParts) (stop func() error, estimate func() time.Duration, err error) {
	nc, err := nats.Connect(natsURL, nats.Name(wp.owner))
	if err != nil {
		return nil, nil, fmt.Errorf("worker: connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	assets, err := jobs.Setup(setupCtx, js, jobs.SetupConfig{})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	reg := prometheus.NewRegistry()
	wp.metrics = metrics.New(reg, metrics.BuildInfo{})
	w, err := newWorker(js, assets, wp, worker.Config{})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	estimate = func() time.Duration {
		families, _ := reg.Gather()
		for _, f := range families {
			if f.GetName() == "deployq_build_time_estimate_seconds" && len(f.GetMetric()) == 1 {
				return time.Duration(f.GetMetric()[0].GetGauge().GetValue() * float64(time.Second))
			}
		}
		return 0
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	var once sync.Once
	var stopErr error
	return func() error {
		once.Do(func() {
			cancel()
			t := time.NewTimer(wp.grace + workerStopTimeout)
			defer t.Stop()
			select {
			case err := <-done:
				if err != nil {
					stopErr = fmt.Errorf("worker stopped with %w", err)
				}
			case <-t.C:
				stopErr = errors.New("worker did not stop in time")
			}
			nc.Close()
		})
		return stopErr
	}, estimate, nil
}

// collect submits the deploys and gathers their terminal events. The
// follower starts before the first submit, so no event can be missed.
func collect(ctx context.Context, o options, c buildCase, client *jobs.Client, tgz [][]byte, d *caseData, progress io.Writer) error {
	f, err := bench.Follow(ctx, client, benchTenant, o.deploys)
	if err != nil {
		return err
	}
	defer f.Stop()
	want := make(map[string]bool, o.deploys)
	for i := range o.deploys {
		src := i % len(tgz)
		// Ids need only be unique per configuration: each has its own NATS.
		id := fmt.Sprintf("sb-%03d", i)
		req := jobs.Request{ID: id, Tenant: benchTenant, Name: "scalebench", Framework: "nextjs"}
		sctx, cancel := context.WithTimeout(ctx, submitTimeout)
		d.submitted[id] = time.Now()
		want[id] = true
		_, err := client.Submit(sctx, req, tgz[src])
		cancel()
		if err != nil {
			return fmt.Errorf("submit %s: %w", id, err)
		}
		d.perSource[src]++
	}

	got, missing, err := f.Await(ctx, want, o.timeout, progressPeriod, func(ended int) {
		fmt.Fprintf(progress, "scalebench: requests: %-12s %d/%d deploys ended\n", c.name(), ended, o.deploys)
	})
	for id, e := range got {
		d.terminal[id] = e.Event
	}
	if len(missing) > 0 {
		d.timedOut, d.missing = true, missing
	}
	return err
}

// totalRequests is every request the simulator saw, unknown routes too.
func totalRequests(st vercelsim.Stats) int {
	n := st.UnknownRoutes
	for _, v := range st.Requests {
		n += v
	}
	return n
}
