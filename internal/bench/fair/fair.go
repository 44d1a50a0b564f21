package fair

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/deployq/deployq/internal/bench"
	fairq "github.com/deployq/deployq/internal/fair"
	"github.com/deployq/deployq/internal/stack"
	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go"
)

type options struct {
	noisyLimit  string
	burst       int
	skewLimit   string
	skewN       int
	tenants     int
	window      time.Duration
	buildTime   time.Duration
	concurrency int
	timeout     time.Duration
	json        string
	seed        int64
	keep        bool
	parts       string
	// The crowd.
	crowdTenants     int
	crowdQueued      int
	crowdConcurrency int
	crowdBuild       time.Duration
	crowdWindow      time.Duration
	clusterLanes     int
}

// Main parses args (what follows "bench fair") and runs the benchmark;
// it returns the exit code (2 for usage errors, 1 when a measurement
// failed).
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 && args[0] == modeChild {
		return runChild(ctx, args[1:], stdout, stderr)
	}
	var o options
	fs := flag.NewFlagSet("bench fair", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.noisyLimit, "noisy-limits", "deployments.create=4/10s", "limits of the noisy-neighbour part (simulator and budget)")
	fs.IntVar(&o.burst, "burst", 60, "noisy neighbour: big's deploys, submitted before small's one")
	fs.StringVar(&o.skewLimit, "skew-limits", "deployments.create=20/10s", "limits of the skewed-tenants part")
	fs.IntVar(&o.skewN, "skew-n", 300, "skewed tenants: deploys in all, half of them one tenant's")
	fs.IntVar(&o.tenants, "tenants", 10, "skewed tenants: how many")
	fs.DurationVar(&o.window, "window", 10*time.Second, "skewed tenants: the windows Jain's index is taken over")
	fs.DurationVar(&o.buildTime, "build-time", time.Second, "simulated build time (plus up to a fifth of it)")
	fs.IntVar(&o.concurrency, "concurrency", 16, "the worker's slots")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "longest wait for a part's terminal events")
	fs.StringVar(&o.json, "json", "docs/benchmarks/fair.json", "write the results here; empty skips")
	fs.Int64Var(&o.seed, "seed", 0, "simulator and submission-order seed (0: random, recorded)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary NATS stores")
	fs.StringVar(&o.parts, "parts", "noisy,skewed,crowd,cluster", "the parts to run, comma-separated")
	fs.IntVar(&o.clusterLanes, "cluster-lanes", 1000, "cluster: tenants' consumers made on a 3-node cluster")
	fs.IntVar(&o.crowdTenants, "crowd-tenants", 1000, "crowd: tenants with requests queued")
	fs.IntVar(&o.crowdQueued, "crowd-queued", 100000, "crowd: requests queued in front of the worker process")
	fs.IntVar(&o.crowdConcurrency, "crowd-concurrency", 64, "crowd: the worker process's slots")
	fs.DurationVar(&o.crowdBuild, "crowd-build-time", time.Second, "crowd: simulated build time")
	fs.DurationVar(&o.crowdWindow, "crowd-window", 30*time.Second, "crowd: how long the worker process takes requests before it is measured")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	noisyLimits, err := budget.ParseLimits(o.noisyLimit)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	skewLimits, err := budget.ParseLimits(o.skewLimit)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if o.tenants < 2 || o.skewN < 2*o.tenants || o.burst < 1 || o.concurrency < 1 ||
		o.crowdTenants < 1 || o.crowdQueued < o.crowdTenants || o.crowdConcurrency < 1 || o.clusterLanes < 1 {
		fmt.Fprintln(stderr, "bench fair: want -tenants ≥ 2, -skew-n ≥ 2 × tenants, -burst ≥ 1, -concurrency ≥ 1, -crowd-queued ≥ -crowd-tenants ≥ 1, -crowd-concurrency ≥ 1, -cluster-lanes ≥ 1")
		return 2
	}
	run := map[string]bool{}
	for p := range strings.SplitSeq(o.parts, ",") {
		switch p = strings.TrimSpace(p); p {
		case "noisy", "skewed", "crowd", "cluster":
			run[p] = true
		default:
			fmt.Fprintf(stderr, "bench fair: -parts: unknown part %q (want noisy, skewed, crowd, cluster)\n", p)
			return 2
		}
	}
	o.seed = bench.Seed(o.seed)
	dir, err := os.MkdirTemp("", "fairbench-")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	started := time.Now()
	res := results{Machine: bench.DescribeMachine(started), Seed: o.seed, Options: o.describe()}
	failed := false
	for _, part := range []struct {
		name string
		run  func(ctx context.Context, m mode, d *deployq) (modeResult, error)
		lim  map[vercel.Endpoint]budget.Limit
	}{
		{"noisy", o.noisy, noisyLimits},
		{"skewed", o.skewed, skewLimits},
	} {
		if !run[part.name] {
			continue
		}
		fmt.Fprintf(stderr, "fairbench: %s: arrival order and fair dispatch side by side\n", part.name)
		got, err := sideBySide(ctx, filepath.Join(dir, part.name), o, part.lim, part.run)
		if err != nil {
			fmt.Fprintf(stderr, "fairbench: %s: %v\n", part.name, err)
			failed = true
			break
		}
		if part.name == "noisy" {
			res.Noisy = got
		} else {
			res.Skewed = got
		}
	}
	if !failed && run["crowd"] {
		if res.Crowd, err = o.crowd(ctx, filepath.Join(dir, "crowd"), stderr); err != nil {
			fmt.Fprintf(stderr, "fairbench: crowd: %v\n", err)
			failed = true
		}
	}
	if !failed && run["cluster"] {
		if res.Cluster, err = o.cluster(ctx, filepath.Join(dir, "cluster"), stderr); err != nil {
			fmt.Fprintf(stderr, "fairbench: cluster: %v\n", err)
			failed = true
		}
	}
	if !failed {
		res.print(stdout, o)
		if o.json != "" {
			if err := bench.WriteJSON(o.json, res); err != nil {
				fmt.Fprintln(stderr, err)
				failed = true
			}
		}
	}
	return bench.Finish(stderr, "fairbench", dir, failed, o.keep)
}

func (o options) describe() map[string]string {
	return map[string]string{
		"noisy-limits": o.noisyLimit, "burst": fmt.Sprint(o.burst), "skew-limits": o.skewLimit,
		"skew-n": fmt.Sprint(o.skewN), "tenants": fmt.Sprint(o.tenants), "window": o.window.String(),
		"build-time": o.buildTime.String(), "concurrency": fmt.Sprint(o.concurrency), "parts": o.parts,
		"crowd-tenants": fmt.Sprint(o.crowdTenants), "crowd-queued": fmt.Sprint(o.crowdQueued),
		"crowd-concurrency": fmt.Sprint(o.crowdConcurrency), "crowd-build-time": o.crowdBuild.String(), "crowd-window": o.crowdWindow.String(),
		"cluster-lanes": fmt.Sprint(o.clusterLanes),
	}
}

// mode is one way of dispatching.
type mode struct {
	Name    string
	arrival bool
}

var modes = []mode{{"arrival order", true}, {"fair", false}}

// modeResult is one part's outcome under one mode.
type modeResult struct {
	Mode string `json:"mode"`
	// The noisy neighbour.
	SmallSeconds float64 `json:"smallSeconds,omitempty"`
	BigBefore    int     `json:"bigEndedBeforeSmall,omitempty"`
	// The skewed tenants.
	JainMean     float64 `json:"jainMean,omitempty"`
	JainMin      float64 `json:"jainMin,omitempty"`
	Windows      int     `json:"windows,omitempty"`
	Throughput   float64 `json:"deploysPerSecond,omitempty"`
	WallSeconds  float64 `json:"wallSeconds,omitempty"`
	Failed       int     `json:"failed"`
	RateLimited  int     `json:"answered429"`
	APIRequests  int     `json:"apiRequests"`
	BigShareWhen float64 `json:"bigShareWhileAllWaited,omitempty"`
}

type results struct {
	Machine bench.Machine     `json:"machine"`
	Seed    int64             `json:"seed"`
	Options map[string]string `json:"options"`
	Noisy   []modeResult      `json:"noisy"`
	Skewed  []modeResult      `json:"skewed"`
	Crowd   []crowdResult     `json:"crowd,omitempty"`
	Cluster *clusterResult    `json:"cluster,omitempty"`
}

// sideBySide runs part under both modes at once, each on its own deployq.
func sideBySide(ctx context.Context, dir string, o options, limits map[vercel.Endpoint]budget.Limit,
	part func(context.Context, mode, *deployq) (modeResult, error)) ([]modeResult, error) {
	out := make([]modeResult, len(modes))
	errs := make([]error, len(modes))
	var wg sync.WaitGroup
	for i, m := range modes {
		wg.Go(func() {
			d, err := startDeployq(ctx, filepath.Join(dir, fmt.Sprint(i)), m, o, limits)
			if err != nil {
				errs[i] = err
				return
			}
			defer d.close()
			out[i], errs[i] = part(ctx, m, d)
			out[i].Mode = m.Name
			st := d.stack.Sim.Stats()
			for ep, n := range st.Requests {
				out[i].APIRequests += n
				out[i].RateLimited += st.RateLimited[ep]
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", modes[i].Name, err)
		}
	}
	return out, nil
}

// deployq is one mode's running deployq.
type deployq struct {
	stack  *stack.Stack
	client *jobs.Client
	tgz    []byte
	close  func()
}

func startDeployq(ctx context.Context, dir string, m mode, o options, limits map[vercel.Endpoint]budget.Limit) (*deployq, error) {
	quiet := slog.New(slog.DiscardHandler)
	s, err := stack.Start(ctx, stack.Config{
		Dir: dir, Name: "fairbench",
		Setup: jobs.SetupConfig{ArrivalOrder: m.arrival},
		Sim: &vercelsim.Config{BuildTime: o.buildTime, BuildJitter: o.buildTime / 5, Seed: o.seed,
			RateLimits: stack.SimLimits(limits)},
	})
	if err != nil {
		return nil, err
	}
	closers := []func(){s.Close}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (*deployq, error) { closeAll(); return nil, err }
	store, err := budget.NewKVStore(ctx, s.JS, budget.KVStoreConfig{})
	if err != nil {
		return fail(err)
	}
	closers = append(closers, store.Close)
	b, err := budget.New(store, budget.Config{Limits: limits, Logger: quiet})
	if err != nil {
		return fail(err)
	}
	api, err := s.API("", vercel.WithLimiter(b))
	if err != nil {
		return fail(err)
	}
	p, err := s.Pipeline(api, worker.PipelineConfig{ExpectedBuild: o.buildTime})
	if err != nil {
		return fail(err)
	}
	_, stop, err := s.RunWorker(ctx, nil, p, worker.Config{Concurrency: o.concurrency, ShutdownGrace: time.Second, Logger: quiet})
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { _ = stop() })
	c, err := jobs.NewClient(ctx, s.JS, jobs.ClientConfig{})
	if err != nil {
		return fail(err)
	}
	tgz := vercelsim.Tarball(map[string]string{"package.json": `{"name":"fairbench"}`, "index.js": "module.exports = 1\n"})
	return &deployq{stack: s, client: c, tgz: tgz, close: closeAll}, nil
}

// ended is a terminal event as it arrived.
type ended struct {
	tenant, id string
	typ        jobs.EventType
	at         time.Time
}

// follow collects every terminal event, stamped on arrival.
func (d *deployq) follow() (<-chan ended, func(), error) {
	ch := make(chan ended, 1<<16)
	sub, err := d.stack.NC.Subscribe("deploy.events.*.*", func(m *nats.Msg) {
		ev, err := jobs.DecodeEvent(m.Data)
		if err != nil || !ev.Terminal() {
			return
		}
		select {
		case ch <- ended{tenant: ev.Data.Tenant, id: ev.Data.RequestID, typ: ev.Type, at: time.Now()}:
		default:
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return ch, func() { _ = sub.Unsubscribe() }, nil
}

func (d *deployq) submit(ctx context.Context, tenant, id string) error {
	_, err := d.client.Submit(ctx, jobs.Request{Tenant: tenant, ID: id, Name: "fairbench"}, d.tgz)
	return err
}

// noisy: big's burst, then small's single deploy, timed to its end.
func (o options) noisy(ctx context.Context, _ mode, d *deployq) (modeResult, error) {
	events, stop, err := d.follow()
	if err != nil {
		return modeResult{}, err
	}
	defer stop()
	for i := range o.burst {
		if err := d.submit(ctx, "big", fmt.Sprint("burst-", i)); err != nil {
			return modeResult{}, err
		}
	}
	t0 := time.Now()
	if err := d.submit(ctx, "small", "single"); err != nil {
		return modeResult{}, err
	}
	var r modeResult
	deadline := time.After(o.timeout)
	for {
		select {
		case e := <-events:
			if e.tenant == "big" {
				r.BigBefore++
				continue
			}
			if e.typ != jobs.TypeSucceeded {
				r.Failed++
			}
			r.SmallSeconds = e.at.Sub(t0).Seconds()
			return r, nil
		case <-deadline:
			return r, fmt.Errorf("small's deploy did not end within %s", o.timeout)
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
}

// skewed: ten tenants at once, one with half of the requests.
func (o options) skewed(ctx context.Context, _ mode, d *deployq) (modeResult, error) {
	events, stop, err := d.follow()
	if err != nil {
		return modeResult{}, err
	}
	defer stop()
	// The requests, in one random order shared by both modes (the seed).
	var order []string
	big := o.skewN / 2
	for i := range o.skewN {
		t := 0
		if i >= big {
			t = 1 + (i-big)%(o.tenants-1)
		}
		order = append(order, fmt.Sprint("t", t))
	}
	rng := rand.New(rand.NewPCG(uint64(o.seed), 7))
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	left := map[string]int{}
	for _, t := range order {
		left[t]++
	}
	start := time.Now()
	for i, t := range order {
		if err := d.submit(ctx, t, fmt.Sprint("skew-", i)); err != nil {
			return modeResult{}, err
		}
	}
	var done []ended
	deadline := time.After(o.timeout)
	for len(done) < len(order) {
		select {
		case e := <-events:
			done = append(done, e)
		case <-deadline:
			return modeResult{}, fmt.Errorf("%d of %d deploys ended within %s", len(done), len(order), o.timeout)
		case <-ctx.Done():
			return modeResult{}, ctx.Err()
		}
	}
	r := modeResult{WallSeconds: done[len(done)-1].at.Sub(start).Seconds()}
	r.Throughput = float64(len(done)) / r.WallSeconds
	// Windows in which every tenant still had a deploy not ended.
	var jains []float64
	bigCount, allCount := 0, 0
	i := 0
	for w := start; ; w = w.Add(o.window) {
		count := map[string]float64{}
		for i < len(done) && done[i].at.Before(w.Add(o.window)) {
			count[done[i].tenant]++
			left[done[i].tenant]--
			if done[i].typ != jobs.TypeSucceeded {
				r.Failed++
			}
			i++
		}
		all := true
		for _, n := range left {
			all = all && n > 0
		}
		if !all {
			break
		}
		var xs []float64
		for t := range left {
			xs = append(xs, count[t])
		}
		jains = append(jains, fairq.Jain(xs))
		bigCount += int(count["t0"])
		for _, x := range xs {
			allCount += int(x)
		}
	}
	for ; i < len(done); i++ {
		if done[i].typ != jobs.TypeSucceeded {
			r.Failed++
		}
	}
	r.Windows = len(jains)
	if len(jains) > 0 {
		r.JainMin = slices.Min(jains)
		for _, j := range jains {
			r.JainMean += j / float64(len(jains))
		}
	}
	if allCount > 0 {
		r.BigShareWhen = float64(bigCount) / float64(allCount)
	}
	return r, nil
}

func (r results) print(w io.Writer, o options) {
	if len(r.Noisy) > 0 {
		r.printNoisy(w, o)
	}
	if len(r.Skewed) > 0 {
		r.printSkewed(w, o)
	}
	if len(r.Crowd) > 0 {
		fmt.Fprintf(w, "\n## Crowd: %d requests of %d tenants queued in front of one worker process (%d slots, builds %s, measured after %s)\n\n",
			o.crowdQueued, o.crowdTenants, o.crowdConcurrency, o.crowdBuild, o.crowdWindow)
		fmt.Fprintln(w, "| dispatch | consumers | deploys ended (tenants served) | dispatch decisions | decision mean, p50, p99 (bucket bounds) | RSS now (peak) | Go heap in use after GC | goroutines |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|")
		for _, c := range r.Crowd {
			fmt.Fprintf(w, "| %s | %d | %d (%d) | %d | %s, ≤ %s, ≤ %s | %.0f MB (%.0f MB) | %.1f MB | %d |\n", c.Mode, c.Consumers, c.Ended, c.TenantsServed,
				c.Decisions, seconds(c.DecisionMean), seconds(c.DecisionP50), seconds(c.DecisionP99), c.RSSMB, c.PeakRSSMB, c.HeapInUseMB, c.Goroutines)
		}
	}
	if c := r.Cluster; c != nil {
		fmt.Fprintf(w, "\n## Cluster: %d tenants' consumers on a 3-node cluster (R3: a Raft group each; the three nodes in one process)\n\n", c.Lanes)
		fmt.Fprintln(w, "| made in | each, p50 / p99 | Go heap before → after | RSS before → after | idle CPU before → after | a lane's fetch, p50 / p99 | deleted in |")
		fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|")
		fmt.Fprintf(w, "| %.1f s | %s / %s | %.0f → %.0f MB | %.0f → %.0f MB | %.1f %% → %.1f %% of a core | %s / %s | %.1f s |\n",
			c.CreateSeconds, seconds(c.CreateP50), seconds(c.CreateP99), c.HeapBeforeMB, c.HeapAfterMB, c.RSSBeforeMB, c.RSSAfterMB,
			100*c.IdleCPUBefore, 100*c.IdleCPUAfter, seconds(c.FetchP50), seconds(c.FetchP99), c.DeletedSeconds)
	}
	fmt.Fprintf(w, "\nmachine: %s; seed %d\n", r.Machine, r.Seed)
}

// seconds writes a short duration in µs or ms.
func seconds(s float64) string {
	switch {
	case math.IsInf(s, 1):
		return "∞"
	case s < 1e-3:
		return fmt.Sprintf("%.1f µs", s*1e6)
	}
	return fmt.Sprintf("%.2f ms", s*1e3)
}

func (r results) printNoisy(w io.Writer, o options) {
	fmt.Fprintf(w, "## Noisy neighbour: %d deploys of big, then 1 of small (%s, builds %s, %d slots)\n\n", o.burst, o.noisyLimit, o.buildTime, o.concurrency)
	fmt.Fprintln(w, "| dispatch | small's submit → end | big's deploys ended before it | 429s / API requests |")
	fmt.Fprintln(w, "|---|--:|--:|--:|")
	for _, m := range r.Noisy {
		fmt.Fprintf(w, "| %s | %.1f s | %d | %d / %d |\n", m.Mode, m.SmallSeconds, m.BigBefore, m.RateLimited, m.APIRequests)
	}
}

func (r results) printSkewed(w io.Writer, o options) {
	fmt.Fprintf(w, "\n## Skewed tenants: %d deploys over %d tenants, one with half (%s, builds %s, %d slots)\n\n", o.skewN, o.tenants, o.skewLimit, o.buildTime, o.concurrency)
	fmt.Fprintf(w, "| dispatch | Jain's index, mean (min) over %s windows while all waited | windows | the big tenant's share then | deploys/s, whole run | wall time | failed | 429s / API requests |\n", o.window)
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, m := range r.Skewed {
		fmt.Fprintf(w, "| %s | %.3f (%.3f) | %d | %.1f %% | %.3f | %.1f s | %d | %d / %d |\n", m.Mode, m.JainMean, m.JainMin, m.Windows,
			100*m.BigShareWhen, m.Throughput, m.WallSeconds, m.Failed, m.RateLimited, m.APIRequests)
	}
	if len(r.Skewed) == 2 && r.Skewed[0].Throughput > 0 {
		fmt.Fprintf(w, "\nthroughput, fair ÷ arrival order: %.3f\n", r.Skewed[1].Throughput/r.Skewed[0].Throughput)
	}
}
