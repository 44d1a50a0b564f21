package critpath

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/internal/stack"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

type options struct {
	deploys   int
	warmup    int
	buildTime time.Duration
	store     time.Duration // the database's latency
	call      time.Duration // every other creating call's latency
	read      time.Duration // a status read's latency
	json      string
	seed      int64
	keep      bool
}

// mode is one way of running the pipeline's calls.
type mode struct {
	Name       string
	sequential bool
}

var modes = []mode{{"each call at its step", true}, {"independent calls early", false}}

// result is one mode's outcome.
type result struct {
	Mode          string         `json:"mode"`
	Seconds       []float64      `json:"submitToClaimSeconds"`
	Median        float64        `json:"medianSeconds"`
	Max           float64        `json:"maxSeconds"`
	APIPerDeploy  float64        `json:"apiRequestsPerDeploy"`
	APIByEndpoint map[string]int `json:"apiRequestsByEndpoint"`
	Failed        int            `json:"failed"`
	TargetSeconds float64        `json:"targetSeconds"`
	ChainSeconds  float64        `json:"chainSeconds"`
	BuildSeconds  float64        `json:"buildSeconds"`
}

type results struct {
	Machine bench.Machine     `json:"machine"`
	Seed    int64             `json:"seed"`
	Options map[string]string `json:"options"`
	Modes   []result          `json:"modes"`
}

// Main parses args (what follows "bench path") and runs the benchmark; it
// returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var o options
	fs := flag.NewFlagSet("bench path", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.deploys, "n", 8, "deploys measured per mode, one at a time")
	fs.IntVar(&o.warmup, "warmup", 8, "deploys per mode before the measured ones, unmeasured: the worker's build-time estimate settles, as a running worker's has")
	fs.DurationVar(&o.buildTime, "build-time", 10*time.Second, "simulated build time (fixed)")
	fs.DurationVar(&o.store, "store-latency", 3*time.Second, "latency of creating a database")
	fs.DurationVar(&o.call, "call-latency", 300*time.Millisecond, "latency of every other creating call (project, authorization, connection, upload, deployment, claim code)")
	fs.DurationVar(&o.read, "read-latency", 100*time.Millisecond, "latency of a status read")
	fs.StringVar(&o.json, "json", "docs/benchmarks/path.json", "write the results here; empty skips")
	fs.Int64Var(&o.seed, "seed", 0, "simulator seed (0: random, recorded)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary NATS stores")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.deploys < 1 || o.warmup < 0 || o.buildTime <= 0 {
		fmt.Fprintln(stderr, "bench path: want -n ≥ 1, -warmup ≥ 0 and a positive -build-time")
		return 2
	}
	o.seed = bench.Seed(o.seed)
	dir, err := os.MkdirTemp("", "pathbench-")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	res := results{Machine: bench.DescribeMachine(time.Now()), Seed: o.seed, Options: map[string]string{
		"n": fmt.Sprint(o.deploys), "warmup": fmt.Sprint(o.warmup), "build-time": o.buildTime.String(), "store-latency": o.store.String(),
		"call-latency": o.call.String(), "read-latency": o.read.String(),
	}}
	out := make([]result, len(modes))
	errs := make([]error, len(modes))
	var wg sync.WaitGroup
	fmt.Fprintln(stderr, "pathbench: both modes side by side")
	for i, m := range modes {
		wg.Go(func() { out[i], errs[i] = o.run(ctx, filepath.Join(dir, fmt.Sprint(i)), m) })
	}
	wg.Wait()
	failed := false
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(stderr, "pathbench: %s: %v\n", modes[i].Name, err)
			failed = true
		}
	}
	if !failed {
		res.Modes = out
		res.print(stdout, o)
		if o.json != "" {
			if err := bench.WriteJSON(o.json, res); err != nil {
				fmt.Fprintln(stderr, err)
				failed = true
			}
		}
	}
	return bench.Finish(stderr, "pathbench", dir, failed, o.keep)
}

// chain is the longest chain of dependent calls: the authorization (or
// the project, as long), the database, its connection, the deployment,
// and after the build the status read that sees it ready.
func (o options) chain() time.Duration { return o.call + o.store + o.call + o.call + o.read }

func (o options) run(ctx context.Context, dir string, m mode) (result, error) {
	r := result{Mode: m.Name, ChainSeconds: o.chain().Seconds(), BuildSeconds: o.buildTime.Seconds(),
		TargetSeconds: (o.buildTime + o.chain() + 100*time.Millisecond).Seconds()}
	lat := func(d time.Duration) vercelsim.Fault { return vercelsim.Fault{Latency: d} }
	faults := map[vercel.Endpoint]vercelsim.Fault{
		vercel.EndpointCreateStore: lat(o.store), vercel.EndpointGetDeployment: lat(o.read),
		vercel.EndpointDeploymentEvents: lat(o.read), vercel.EndpointGetProject: lat(o.read),
	}
	for _, ep := range []vercel.Endpoint{vercel.EndpointCreateProject, vercel.EndpointAuthorize, vercel.EndpointConnectStore,
		vercel.EndpointUploadFile, vercel.EndpointCreateDeployment, vercel.EndpointTransferRequest} {
		faults[ep] = lat(o.call)
	}
	s, err := stack.Start(ctx, stack.Config{Dir: dir, Name: "pathbench",
		Sim: &vercelsim.Config{BuildTime: o.buildTime, Seed: o.seed, Faults: faults}})
	if err != nil {
		return r, err
	}
	defer s.Close()
	quiet := slog.New(slog.DiscardHandler)
	api, err := s.API("")
	if err != nil {
		return r, err
	}
	p, err := s.Pipeline(api, worker.PipelineConfig{ExpectedBuild: o.buildTime, Sequential: m.sequential, BuildTimes: s.Assets.BuildTimes})
	if err != nil {
		return r, err
	}
	_, stopWorker, err := s.RunWorker(ctx, nil, p, worker.Config{Concurrency: 4, ShutdownGrace: time.Second, Logger: quiet})
	if err != nil {
		return r, err
	}
	defer func() { _ = stopWorker() }()
	c, err := jobs.NewClient(ctx, s.JS, jobs.ClientConfig{})
	if err != nil {
		return r, err
	}
	f, err := bench.Follow(ctx, c, "path", o.warmup+o.deploys)
	if err != nil {
		return r, err
	}
	defer f.Stop()
	tgz := vercelsim.Tarball(map[string]string{"package.json": `{"name":"pathbench"}`, "index.js": "module.exports = 1\n"})
	var before map[vercel.Endpoint]int
	for i := range o.warmup + o.deploys {
		if i == o.warmup {
			before = s.Sim.Stats().Requests
		}
		start := time.Now()
		sub, err := c.Submit(ctx, jobs.Request{Tenant: "path", ID: fmt.Sprintf("p%03d", i), Name: "pathbench"}, tgz)
		if err != nil {
			return r, err
		}
		got, missing, err := f.Await(ctx, map[string]bool{sub.ID: true}, o.buildTime+time.Minute, 0, nil)
		if err != nil {
			return r, err
		}
		if len(missing) > 0 {
			return r, fmt.Errorf("deploy %s did not end", sub.ID)
		}
		e := got[sub.ID]
		if e.Type != jobs.TypeSucceeded || e.Data.ClaimURL == "" {
			r.Failed++
			continue
		}
		if i >= o.warmup {
			r.Seconds = append(r.Seconds, e.At.Sub(start).Seconds())
		}
	}
	// The measured deploys' calls only.
	st := s.Sim.Stats()
	total := 0
	r.APIByEndpoint = map[string]int{}
	for ep, n := range st.Requests {
		n -= before[ep]
		total += n
		r.APIByEndpoint[string(ep)] = n
	}
	r.APIPerDeploy = float64(total) / float64(o.deploys)
	if len(r.Seconds) > 0 {
		sorted := slices.Sorted(slices.Values(r.Seconds))
		r.Median, r.Max = sorted[len(sorted)/2], sorted[len(sorted)-1]
	}
	return r, nil
}

func (r results) print(w io.Writer, o options) {
	fmt.Fprintf(w, "## Submit → claim URL at low load: %d deploys a mode after %d unmeasured, one at a time; builds %s; a database %s, other creating calls %s, status reads %s\n\n",
		o.deploys, o.warmup, o.buildTime, o.store, o.call, o.read)
	fmt.Fprintln(w, "| pipeline | median | max | target (build + chain + 0.1 s) | API requests per deploy | failed |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|")
	for _, m := range r.Modes {
		fmt.Fprintf(w, "| %s | %.2f s | %.2f s | %.2f s | %.2f | %d |\n", m.Mode, m.Median, m.Max, m.TargetSeconds, m.APIPerDeploy, m.Failed)
	}
	for _, m := range r.Modes {
		fmt.Fprintf(w, "\n%s, API requests by endpoint:", m.Mode)
		for _, ep := range slices.Sorted(maps.Keys(m.APIByEndpoint)) {
			fmt.Fprintf(w, " %s %d", ep, m.APIByEndpoint[ep])
		}
		fmt.Fprintln(w)
	}
	if len(r.Modes) == 2 && r.Modes[0].Median > 0 {
		fmt.Fprintf(w, "\nearly ÷ sequential, median: %.3f (%.2f s saved); chain of dependent calls %.2f s\n",
			r.Modes[1].Median/r.Modes[0].Median, r.Modes[0].Median-r.Modes[1].Median, o.chain().Seconds())
	}
	fmt.Fprintf(w, "\nmachine: %s; seed %d\n", r.Machine, r.Seed)
}
