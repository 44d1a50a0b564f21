package fair

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
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
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The crowd: many tenants' requests queued in front of one worker
// process. What the tenants' lanes cost that process in memory, and what
// one dispatch decision costs it (deployq_dispatch_decision_seconds), in
// arrival order (one consumer) and fair dispatch (a consumer per tenant).
// The worker runs in a process of its own (this binary again, mode
// "child"), so its memory is its own, not the broker's or the
// simulator's.

// modeChild runs the crowd's worker process.
const modeChild = "child"

// memoryPath serves the worker process's memory after two collections.
const memoryPath = "/debug/memory"

// crowdResult is the crowd part's outcome under one mode.
type crowdResult struct {
	Mode           string  `json:"mode"`
	Queued         int     `json:"queued"`
	QueueSeconds   float64 `json:"queueSeconds"`
	Consumers      int     `json:"consumers"`
	Ended          int     `json:"endedInWindow"`
	TenantsServed  int     `json:"tenantsServed"`
	Decisions      uint64  `json:"decisions"`
	DecisionP50    float64 `json:"decisionP50Seconds"` // upper bound of its bucket
	DecisionP99    float64 `json:"decisionP99Seconds"`
	DecisionMean   float64 `json:"decisionMeanSeconds"`
	RSSMB          float64 `json:"rssMB"`
	PeakRSSMB      float64 `json:"peakRssMB"`
	HeapInUseMB    float64 `json:"heapInUseMB"`
	Goroutines     int     `json:"goroutines"`
	WorkerExitedOK bool    `json:"workerExitedOK"`
}

// childMemory is what memoryPath answers.
type childMemory struct {
	HeapInUse  uint64 `json:"heapInUse"`
	Goroutines int    `json:"goroutines"`
}

// crowd runs the crowd part in each mode, one after the other (each has
// the machine to itself).
func (o options) crowd(ctx context.Context, dir string, stderr io.Writer) ([]crowdResult, error) {
	var out []crowdResult
	for i, m := range modes {
		fmt.Fprintf(stderr, "fairbench: crowd: %s: %d requests of %d tenants\n", m.Name, o.crowdQueued, o.crowdTenants)
		r, err := o.crowdMode(ctx, filepath.Join(dir, fmt.Sprint(i)), m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (o options) crowdMode(ctx context.Context, dir string, m mode) (crowdResult, error) {
	r := crowdResult{Mode: m.Name}
	setup := jobs.SetupConfig{ArrivalOrder: m.arrival, MaxLanes: 2*o.crowdTenants + 10}
	s, err := stack.Start(ctx, stack.Config{Dir: dir, Name: "fairbench-crowd", Setup: setup,
		Sim: &vercelsim.Config{BuildTime: o.crowdBuild, BuildJitter: o.crowdBuild / 5, Seed: o.seed}})
	if err != nil {
		return r, err
	}
	defer s.Close()
	began := time.Now()
	if r.Queued, err = o.queueCrowd(ctx, s); err != nil {
		return r, err
	}
	r.QueueSeconds = time.Since(began).Seconds()

	events, stopFollow, err := (&deployq{stack: s}).follow()
	if err != nil {
		return r, err
	}
	defer stopFollow()
	cmd := exec.CommandContext(ctx, os.Args[0], "fair", modeChild,
		"-nats-url", s.NATS.ClientURL(), "-sim-url", s.SimURL,
		"-concurrency", fmt.Sprint(o.crowdConcurrency), "-build", o.crowdBuild.String(),
		"-arrival="+strconv.FormatBool(m.arrival), "-max-lanes", fmt.Sprint(setup.MaxLanes))
	cmd.Stderr = os.Stderr
	p, err := bench.StartProcess(cmd)
	if err != nil {
		return r, err
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			r.WorkerExitedOK = bench.StopProcesses(30*time.Second, p)[0] == bench.ExitOK
		}
	}
	defer stop()
	line, err := p.Ready(ctx, time.Minute)
	if err != nil {
		return r, err
	}
	addr, ok := strings.CutPrefix(line, "ready ")
	if !ok {
		return r, fmt.Errorf("the worker process said %q, not ready", line)
	}

	// The window: the worker takes requests while every tenant has some
	// waiting.
	tenants := map[string]bool{}
	window := time.NewTimer(o.crowdWindow)
	defer window.Stop()
collect:
	for {
		select {
		case e := <-events:
			r.Ended++
			tenants[e.tenant] = true
		case <-window.C:
			break collect
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
	r.TenantsServed = len(tenants)

	if err := readDecisions(ctx, addr, &r); err != nil {
		return r, err
	}
	var mem childMemory
	if err := getJSON(ctx, "http://"+addr+memoryPath, &mem); err != nil {
		return r, err
	}
	r.HeapInUseMB, r.Goroutines = float64(mem.HeapInUse)/(1<<20), mem.Goroutines
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err == nil {
		if kb, ok := bench.StatusKB(status, "VmRSS"); ok {
			r.RSSMB = float64(kb) / 1024
		}
		if kb, ok := bench.StatusKB(status, "VmHWM"); ok {
			r.PeakRSSMB = float64(kb) / 1024
		}
	}
	lister := s.Assets.Requests.ListConsumers(ctx)
	for range lister.Info() {
		r.Consumers++
	}
	if err := lister.Err(); err != nil {
		return r, err
	}
	stop()
	return r, nil
}

// queueCrowd queues o.crowdQueued requests, round robin over the
// tenants: each tenant's first through Client.Submit (which stores the
// tenant's copy of the tarball), the rest published as they are, naming
// the same tarball. The tarballs are younger than the janitor's grace
// (10 min), so the requests need no references of their own.
func (o options) queueCrowd(ctx context.Context, s *stack.Stack) (int, error) {
	c, err := jobs.NewClient(ctx, s.JS, jobs.ClientConfig{})
	if err != nil {
		return 0, err
	}
	tgz := vercelsim.Tarball(map[string]string{"package.json": `{"name":"crowd"}`, "index.js": "module.exports = 1\n"})
	sum := sha1.Sum(tgz)
	ref := jobs.SourceRef{Bucket: jobs.BucketSources, SHA1: hex.EncodeToString(sum[:]), Size: int64(len(tgz))}
	tenant := func(i int) string { return fmt.Sprintf("crowd-%04d", i%o.crowdTenants) }
	id := func(i int) string { return fmt.Sprintf("c%06d", i) }

	var wg sync.WaitGroup
	errs := make(chan error, o.crowdTenants)
	sem := make(chan struct{}, 32)
	for i := range o.crowdTenants {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := c.Submit(ctx, jobs.Request{Tenant: tenant(i), ID: id(i), Name: "crowd"}, tgz); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("submit: %w", err)
	}
	_, js, err := s.Connect("crowd-producer")
	if err != nil {
		return 0, err
	}
	for i := o.crowdTenants; i < o.crowdQueued; i++ {
		req := jobs.Request{Version: jobs.RequestVersion, Tenant: tenant(i), ID: id(i), Name: "crowd", Source: ref}
		data, err := json.Marshal(req)
		if err != nil {
			return 0, err
		}
		if _, err := js.PublishAsync(jobs.RequestSubject(req.Tenant, req.ID), data); err != nil {
			return 0, err
		}
		if i%10000 == 0 {
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return 0, errors.New("the requests were not all stored within a minute")
	}
	info, err := s.Assets.Requests.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int(info.State.Msgs), nil
}

// readDecisions reads the dispatch decisions' histogram from the worker
// process's metrics: how many, their mean, and the upper bounds of the
// buckets holding the median and the 99th percentile.
func readDecisions(ctx context.Context, addr string, r *crowdResult) error {
	resp, err := get(ctx, "http://"+addr+"/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	type bucket struct {
		le float64
		n  uint64
	}
	var buckets []bucket
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	const name = "deployq_dispatch_decision_seconds"
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, name+"_bucket{"):
			le, _, _ := strings.Cut(strings.TrimPrefix(line, name+`_bucket{le="`), `"`)
			f := strings.Fields(line)
			n, err := strconv.ParseUint(f[len(f)-1], 10, 64)
			if err != nil {
				return fmt.Errorf("metrics line %q: %w", line, err)
			}
			bound := math.Inf(1)
			if le != "+Inf" {
				if bound, err = strconv.ParseFloat(le, 64); err != nil {
					return fmt.Errorf("metrics line %q: %w", line, err)
				}
			}
			buckets = append(buckets, bucket{bound, n})
		case strings.HasPrefix(line, name+"_sum "):
			sum, _ = strconv.ParseFloat(strings.Fields(line)[1], 64)
		case strings.HasPrefix(line, name+"_count "):
			r.Decisions, _ = strconv.ParseUint(strings.Fields(line)[1], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if r.Decisions == 0 {
		return errors.New("the worker process made no dispatch decision")
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].le < buckets[j].le })
	quantile := func(q float64) float64 {
		for _, b := range buckets {
			if float64(b.n) >= q*float64(r.Decisions) {
				return b.le
			}
		}
		return math.Inf(1)
	}
	r.DecisionP50, r.DecisionP99 = quantile(0.5), quantile(0.99)
	r.DecisionMean = sum / float64(r.Decisions)
	return nil
}

func getJSON(ctx context.Context, url string, v any) error {
	resp, err := get(ctx, url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// get asks the worker process for url; an answer other than 200 is an
// error.
func get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp, nil
}

// runChild is the crowd's worker process: one worker pool against the
// simulator, without an API budget, its metrics and memory served on a
// loopback port. It runs until SIGTERM, or until its stdin closes (the
// parent died).
func runChild(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench fair child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats-url", "", "NATS server URL")
	simURL := fs.String("sim-url", "", "simulator base URL")
	concurrency := fs.Int("concurrency", 64, "jobs at once")
	build := fs.Duration("build", time.Second, "expected build time")
	arrival := fs.Bool("arrival", false, "arrival order (one consumer for every tenant)")
	maxLanes := fs.Int("max-lanes", 0, "SetupConfig.MaxLanes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// Errors only: the hand-back at the end of the window is expected.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if err := serveChild(ctx, *natsURL, *simURL, *concurrency, *build, jobs.SetupConfig{ArrivalOrder: *arrival, MaxLanes: *maxLanes}, stdout, log); err != nil {
		log.Error("worker process failed", "err", err)
		return 1
	}
	return 0
}

func serveChild(ctx context.Context, natsURL, simURL string, concurrency int, build time.Duration, setup jobs.SetupConfig, stdout io.Writer, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	nc, err := nats.Connect(natsURL, nats.Name("fairbench-crowd-worker"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	assets, err := jobs.Setup(sctx, js, setup)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	m := metrics.New(reg, metrics.BuildInfo{Version: "fairbench"})
	api, err := vercel.New(vercel.WithBaseURL(simURL), vercel.WithToken(stack.Token))
	if err != nil {
		return err
	}
	p, err := worker.NewPipeline(api, assets.Sources, assets.Uploads, worker.PipelineConfig{
		IntegrationConfigID: stack.IntegrationConfigID, ExpectedBuild: build, BuildTimes: assets.BuildTimes,
	})
	if err != nil {
		return err
	}
	w, err := worker.New(js, assets, p, worker.Config{Concurrency: concurrency, ShutdownGrace: time.Second, Logger: log, Metrics: m})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+memoryPath, func(rw http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		_ = json.NewEncoder(rw).Encode(childMemory{HeapInUse: ms.HeapInuse, Goroutines: runtime.NumGoroutine()})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	fmt.Fprintln(stdout, "ready", ln.Addr().String())
	return w.Run(ctx)
}
