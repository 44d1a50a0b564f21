package appday

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
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
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/prometheus/client_golang/prometheus"
)

type options struct {
	requests  int
	day       time.Duration
	redeploy  float64
	claim     float64
	ttl       time.Duration
	capacity  int
	buildTime time.Duration
	workers   int
	json      string
	seed      int64
	keep      bool
}

// tenant is the platform's one tenant in the run.
const tenant = "day"

// claimer is the team the users claim their apps into.
const claimer = "team_claimer"

// Results is what a run measured.
type Results struct {
	Machine bench.Machine     `json:"machine"`
	Seed    int64             `json:"seed"`
	Options map[string]string `json:"options"`

	Requests    int            `json:"requests"`
	NewApps     int            `json:"newApps"`
	Versions    int            `json:"laterVersions"`
	Succeeded   int            `json:"succeeded"`
	NotOK       map[string]int `json:"notSucceededByCode"`
	Cap         int            `json:"cap"`
	PeakDBs     int            `json:"peakDatabasesHeld"`
	PeakProj    int            `json:"peakProjectsHeld"`
	ClaimsTried int            `json:"claimsTried"`
	Claimed     int            `json:"claimed"`
	ClaimedVia  map[string]int `json:"claimedVia"`
	Expired     int            `json:"expired"`
	Unsettled   int            `json:"appsUnsettled"`
	// API calls per app beyond its versions' own pipeline: claim codes
	// issued after the first (none in this run unless refreshed), claim
	// checks, and the expiry's calls; from the apps' records.
	ClaimCallsPerApp  float64        `json:"claimCallsPerApp"`
	CheckCallsPerApp  float64        `json:"checkCallsPerApp"`
	ExpiryCallsPerApp float64        `json:"expiryCallsPerExpiredApp"`
	APIByEndpoint     map[string]int `json:"apiRequestsByEndpoint"`
	SettleSeconds     float64        `json:"settledSecondsAfterTheDay"`
	DaySeconds        float64        `json:"daySeconds"`
	UpkeepCalls       map[string]int `json:"upkeepCallsByKind"`
}

// Main parses args (what follows "bench apps") and runs the benchmark; it
// returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var o options
	fs := flag.NewFlagSet("bench apps", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.requests, "n", 3000, "requests in the day")
	fs.DurationVar(&o.day, "day", 2*time.Minute, "the day, compressed: requests arrive evenly over it")
	fs.Float64Var(&o.redeploy, "redeploy", 0.3, "share of requests that deploy a new version of a recent app")
	fs.Float64Var(&o.claim, "claim", 0.15, "share of new apps their users claim")
	fs.DurationVar(&o.ttl, "ttl", 10*time.Second, "APP_TTL, compressed like the day")
	fs.IntVar(&o.capacity, "cap", 500, "the team's database and project cap (the simulator refuses past it)")
	fs.DurationVar(&o.buildTime, "build-time", time.Second, "simulated build time")
	fs.IntVar(&o.workers, "workers", 2, "worker pools (64 jobs each)")
	fs.StringVar(&o.json, "json", "docs/benchmarks/apps.json", "write the results here; empty skips")
	fs.Int64Var(&o.seed, "seed", 0, "seed of the traffic and the simulator (0: random, recorded)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary NATS store")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.requests < 1 || o.day <= 0 || o.ttl <= 0 || o.capacity < 1 || o.workers < 1 ||
		o.redeploy < 0 || o.redeploy >= 1 || o.claim < 0 || o.claim > 1 {
		fmt.Fprintln(stderr, "bench apps: want -n, -day, -ttl, -cap, -workers positive, -redeploy in [0, 1), -claim in [0, 1]")
		return 2
	}
	o.seed = bench.Seed(o.seed)
	dir, err := os.MkdirTemp("", "appsbench-")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	res, err := o.run(ctx, filepath.Join(dir, "nats"), stderr)
	failed := err != nil
	if err != nil {
		fmt.Fprintf(stderr, "appsbench: %v\n", err)
	} else {
		res.print(stdout, o)
		if o.json != "" {
			if err := bench.WriteJSON(o.json, res); err != nil {
				fmt.Fprintln(stderr, err)
				failed = true
			}
		}
	}
	return bench.Finish(stderr, "appsbench", dir, failed, o.keep)
}

// app is the traffic's memory of one app.
type app struct {
	id       string
	inFlight int
	lastEnd  time.Time // its last version's end
	claimAt  time.Time // when its user claims it; zero: never
	claimed  bool
	code     string
	failed   bool
}

func (o options) run(ctx context.Context, dir string, stderr io.Writer) (*Results, error) {
	res := &Results{Machine: bench.DescribeMachine(time.Now()), Seed: o.seed, NotOK: map[string]int{}, Cap: o.capacity,
		ClaimedVia: map[string]int{}, UpkeepCalls: map[string]int{},
		Options: map[string]string{"n": fmt.Sprint(o.requests), "day": o.day.String(), "redeploy": fmt.Sprint(o.redeploy),
			"claim": fmt.Sprint(o.claim), "ttl": o.ttl.String(), "cap": fmt.Sprint(o.capacity), "build-time": o.buildTime.String(),
			"workers": fmt.Sprint(o.workers)}}
	s, err := stack.Start(ctx, stack.Config{Dir: dir, Name: "appsbench", Sim: &vercelsim.Config{
		BuildTime: o.buildTime, Seed: o.seed, MaxStores: o.capacity, MaxProjects: o.capacity, ClaimTeam: claimer,
	}})
	if err != nil {
		return nil, err
	}
	defer s.Close()

	// The workers' public address: Vercel's claim callbacks reach the
	// first worker's ClaimHandler here, on loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var first *worker.Worker
	var firstMu sync.Mutex
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		firstMu.Lock()
		w := first
		firstMu.Unlock()
		if w == nil {
			http.Error(rw, "starting", http.StatusServiceUnavailable)
			return
		}
		w.ClaimHandler().ServeHTTP(rw, r)
	})}
	go func() { _ = hs.Serve(ln) }()
	defer func() { _ = hs.Close() }()

	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "appsbench"})
	quiet := slog.New(slog.DiscardHandler)
	for i := range o.workers {
		api, err := s.API("")
		if err != nil {
			return nil, err
		}
		p, err := s.Pipeline(api, worker.PipelineConfig{ExpectedBuild: o.buildTime, BuildTimes: s.Assets.BuildTimes})
		if err != nil {
			return nil, err
		}
		w, stopWorker, err := s.RunWorker(ctx, nil, p, worker.Config{
			Concurrency: 64, ShutdownGrace: time.Second, Logger: quiet, Metrics: m, Owner: fmt.Sprintf("appsbench-%d", i),
			Apps: worker.AppsConfig{
				TTL: o.ttl, CheckEvery: o.ttl, UpkeepEvery: 250 * time.Millisecond, UpkeepPace: 2 * time.Millisecond,
				CallbackURL: "http://" + ln.Addr().String(), CallbackSecret: "appsbench-callback-key",
			},
		})
		if err != nil {
			return nil, err
		}
		defer func() { _ = stopWorker() }()
		if i == 0 {
			firstMu.Lock()
			first = w
			firstMu.Unlock()
		}
	}
	c, err := jobs.NewClient(ctx, s.JS, jobs.ClientConfig{})
	if err != nil {
		return nil, err
	}
	f, err := bench.Follow(ctx, c, tenant, o.requests)
	if err != nil {
		return nil, err
	}
	defer f.Stop()
	user, err := s.API("", vercel.WithTeamID(claimer))
	if err != nil {
		return nil, err
	}

	// Peaks of what the team holds, sampled every 50 ms.
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	var sampled sync.WaitGroup
	defer sampled.Wait()
	sampled.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			dbs, projects := 0, 0
			for _, st := range s.Sim.Stores() {
				if st.Owner != claimer {
					dbs++
				}
			}
			for _, p := range s.Sim.Projects() {
				if p.AccountID != claimer {
					projects++
				}
			}
			res.PeakDBs, res.PeakProj = max(res.PeakDBs, dbs), max(res.PeakProj, projects)
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
			}
		}
	})

	rng := rand.New(rand.NewPCG(uint64(o.seed), 0x61707073))
	tgz := vercelsim.Tarball(map[string]string{"package.json": `{"name":"appsbench"}`, "index.js": "module.exports = 1\n"})
	apps := map[string]*app{}
	var recent []*app // apps a redeploy may pick: ended, unclaimed, younger than ttl/2
	byRequest := map[string]*app{}
	ended := 0
	began := time.Now()
	next := 0
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(o.day + o.ttl + 3*time.Minute)

	// onEnd takes a request's terminal event.
	onEnd := func(ev bench.Ended) {
		ended++
		a := byRequest[ev.Data.RequestID]
		if ev.Type == jobs.TypeSucceeded {
			res.Succeeded++
		} else {
			code := string(ev.Type)
			if ev.Data.Error != nil {
				code = ev.Short() + ":" + ev.Data.Error.Code
			}
			res.NotOK[code]++
		}
		if a == nil {
			return
		}
		a.inFlight--
		if ev.Type != jobs.TypeSucceeded {
			a.failed = a.failed || ev.Data.AppVersion == 1
			return
		}
		a.lastEnd, a.code = ev.At, ev.Data.ClaimCode
		if a.claimAt.IsZero() && ev.Data.AppVersion == 1 && rng.Float64() < o.claim {
			a.claimAt = ev.At.Add(o.ttl / 3)
			res.ClaimsTried++
		}
		if a.claimAt.IsZero() {
			recent = append(recent, a)
		}
	}
	// submit sends request i of the day.
	submit := func(now time.Time) error {
		var a *app
		if rng.Float64() < o.redeploy {
			recent = slices.DeleteFunc(recent, func(x *app) bool { return now.Sub(x.lastEnd) > o.ttl/2 || x.claimed || !x.claimAt.IsZero() })
			if len(recent) > 0 {
				a = recent[rng.IntN(len(recent))]
				if a.inFlight > 0 {
					a = nil
				}
			}
		}
		if a == nil {
			a = &app{id: fmt.Sprintf("app-%05d", len(apps))}
			apps[a.id] = a
			res.NewApps++
		} else {
			res.Versions++
		}
		a.inFlight++
		id := fmt.Sprintf("r-%05d", next)
		byRequest[id] = a
		_, err := c.Submit(ctx, jobs.Request{Tenant: tenant, ID: id, Name: "site", App: a.id}, tgz)
		return err
	}
	claimDue := func(now time.Time) {
		for _, a := range apps {
			if a.claimAt.IsZero() || a.claimed || now.Before(a.claimAt) || a.inFlight > 0 {
				continue
			}
			a.claimed = true
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, _, err := user.AcceptTransferRequest(actx, a.code, vercel.AcceptTransfer{})
			cancel()
			if err != nil {
				fmt.Fprintf(stderr, "appsbench: %s: claim not accepted: %v\n", a.id, err)
			}
		}
	}
	fmt.Fprintf(stderr, "appsbench: %d requests over %s, TTL %s, cap %d\n", o.requests, o.day, o.ttl, o.capacity)
	var dayEnded time.Time
	for ended < o.requests {
		select {
		case ev := <-f.Events():
			onEnd(ev)
		case now := <-tick.C:
			for next < o.requests && now.Sub(began) >= time.Duration(next)*o.day/time.Duration(o.requests) {
				if err := submit(now); err != nil {
					return nil, fmt.Errorf("submit: %w", err)
				}
				next++
			}
			claimDue(now)
			if next == o.requests && dayEnded.IsZero() {
				dayEnded = now
			}
		case <-deadline:
			return nil, fmt.Errorf("%d of %d requests ended in time", ended, o.requests)
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	res.Requests = o.requests
	res.DaySeconds = time.Since(began).Seconds()
	// The claims still due, then every app to its end.
	for _, a := range apps {
		if !a.claimAt.IsZero() && !a.claimed {
			a.claimAt = time.Now()
		}
	}
	claimDue(time.Now())
	kv := s.Assets.Apps
	settleBy := time.Now().Add(o.ttl + 2*time.Minute)
	var final []jobs.App
	for {
		final, err = jobs.ListApps(ctx, kv, tenant)
		if err != nil {
			return nil, err
		}
		unsettled := 0
		for _, a := range final {
			if !(a.State == jobs.AppFailed || ((a.State == jobs.AppClaimed || a.State == jobs.AppExpired) && a.Announced)) {
				unsettled++
			}
		}
		res.Unsettled = unsettled
		if unsettled == 0 || time.Now().After(settleBy) {
			break
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil { // polling the apps' states, bounded by settleBy
			return nil, err
		}
	}
	res.SettleSeconds = time.Since(began).Seconds() - res.DaySeconds
	stopSampling()
	sampled.Wait()

	var claims, checks, expiry, expiredCalls int
	for _, a := range final {
		claims += a.Calls.Claims
		checks += a.Calls.Checks
		switch a.State {
		case jobs.AppClaimed:
			res.Claimed++
			res.ClaimedVia[a.ClaimedVia]++
		case jobs.AppExpired:
			res.Expired++
			expiredCalls += a.Calls.Expiry
		}
		expiry += a.Calls.Expiry
	}
	if n := len(final); n > 0 {
		res.ClaimCallsPerApp = float64(claims) / float64(n)
		res.CheckCallsPerApp = float64(checks) / float64(n)
	}
	if res.Expired > 0 {
		res.ExpiryCallsPerApp = float64(expiredCalls) / float64(res.Expired)
	}
	res.APIByEndpoint = map[string]int{}
	for ep, n := range s.Sim.Stats().Requests {
		res.APIByEndpoint[string(ep)] = n
	}
	if mfs, err := reg.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() != "deployq_app_upkeep_calls_total" {
				continue
			}
			for _, mm := range mf.GetMetric() {
				for _, l := range mm.GetLabel() {
					if l.GetName() == "kind" {
						res.UpkeepCalls[l.GetValue()] += int(mm.GetCounter().GetValue())
					}
				}
			}
		}
	}
	if res.Unsettled > 0 {
		return res, errors.New("apps still live or expiring after the wait: see appsUnsettled")
	}
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

func (r *Results) print(w io.Writer, o options) {
	fmt.Fprintf(w, "## A day compressed into %s: %d requests (%.0f %% new versions of recent apps), %.0f %% of apps claimed, the rest expiring %s after their last version; the team's cap %d databases and %d projects\n\n",
		o.day, o.requests, 100*o.redeploy, 100*o.claim, o.ttl, o.capacity, o.capacity)
	fmt.Fprintln(w, "| requests | new apps | later versions | succeeded | not succeeded | peak databases held | peak projects held | cap |")
	fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|--:|")
	notOK := 0
	for _, n := range r.NotOK {
		notOK += n
	}
	fmt.Fprintf(w, "| %d | %d | %d | %d | %d | %d | %d | %d |\n\n", r.Requests, r.NewApps, r.Versions, r.Succeeded, notOK, r.PeakDBs, r.PeakProj, r.Cap)
	if notOK > 0 {
		fmt.Fprintf(w, "not succeeded by code: %v\n\n", r.NotOK)
	}
	fmt.Fprintf(w, "apps: %d claimed of %d claims (via %v), %d expired, %d unsettled; settled %.1f s after the last request ended\n\n",
		r.Claimed, r.ClaimsTried, r.ClaimedVia, r.Expired, r.Unsettled, r.SettleSeconds)
	fmt.Fprintf(w, "API calls per app after its versions: %.3f claim codes, %.3f claim checks; %.2f per expired app for its expiry. Upkeep calls by kind: %v\n\n",
		r.ClaimCallsPerApp, r.CheckCallsPerApp, r.ExpiryCallsPerApp, r.UpkeepCalls)
	fmt.Fprint(w, "API requests by endpoint:")
	for _, ep := range slices.Sorted(maps.Keys(r.APIByEndpoint)) {
		fmt.Fprintf(w, " %s %d", ep, r.APIByEndpoint[ep])
	}
	fmt.Fprintf(w, "\n\nmachine: %s; seed %d\n", r.Machine, r.Seed)
}
