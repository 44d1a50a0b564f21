package budget_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go/jetstream"
)

// Three worker pools, each with its own NATS connection and budget, share
// one simulator with tight limits: every job succeeds and the API almost
// never answers 429, because the pools spend one shared budget.
func TestFleetSharesTheBudget(t *testing.T) {
	t.Parallel()
	const jobsN = 24
	tight := vercelsim.Limit{Requests: 4, Window: time.Second}
	simLimits := map[vercel.Endpoint]vercelsim.Limit{}
	limits := map[vercel.Endpoint]budget.Limit{}
	for _, ep := range []vercel.Endpoint{
		vercel.EndpointCreateProject, vercel.EndpointAuthorize, vercel.EndpointCreateStore,
		vercel.EndpointConnectStore, vercel.EndpointCreateDeployment, vercel.EndpointGetDeployment,
		vercel.EndpointTransferRequest, vercel.EndpointUploadFile,
	} {
		simLimits[ep] = tight
		limits[ep] = budget.Limit{Requests: tight.Requests, Window: tight.Window}
	}
	h := jobstest.Start(t, jobstest.Config{
		Workers:    3,
		Sim:        vercelsim.Config{BuildTime: 300 * time.Millisecond, RateLimits: simLimits},
		Worker:     worker.Config{Concurrency: 8},
		NewLimiter: sharedBudget(budget.Config{Limits: limits}),
	})
	tgz := h.Tarball(t, nil)
	var ids []string
	for i := range jobsN {
		ids = append(ids, h.Submit(t, jobs.Request{Tenant: "acme", Name: fmt.Sprintf("fleet%d", i)}, tgz).ID)
	}
	got := h.WaitTerminal(t, "acme", 2*time.Minute, ids...)
	for _, id := range ids {
		if got[id].Type != jobs.TypeSucceeded {
			t.Fatalf("%s: %s %+v", id, got[id].Type, got[id].Data.Error)
		}
	}
	stats := h.Sim.Stats()
	total, limited := 0, 0
	for ep, n := range stats.Requests {
		total += n
		limited += stats.RateLimited[ep]
	}
	// The bound: a 429 may come from the jitter between a granted slot and
	// the simulator's fixed window, at most a few per run.
	const maxLimited = 3
	t.Logf("%d requests, %d answered 429", total, limited)
	if limited > maxLimited {
		t.Fatalf("%d of %d requests answered 429, want at most %d: %v", limited, total, maxLimited, stats.RateLimited)
	}
}

// Deployments counted in a longer window by the simulator and by three
// pools' shared budget: the window parks deployment creation while the
// other steps go on, every job succeeds, and the API sees no overrun of
// that window beyond, at most, one call whose grant and arrival straddle
// its edge by more than a slot (25 ms here). The simulator's short window
// is loose: how the pace keeps one is TestFleetSharesTheBudget's matter.
func TestFleetKeepsEveryWindow(t *testing.T) {
	t.Parallel()
	const jobsN = 20
	windows := budget.Limit{Requests: 6, Window: time.Second, Caps: []budget.Cap{{Requests: 8, Window: 3 * time.Second}}}
	h := jobstest.Start(t, jobstest.Config{
		Workers: 3,
		Sim: vercelsim.Config{BuildTime: 100 * time.Millisecond, RateLimits: map[vercel.Endpoint]vercelsim.Limit{
			vercel.EndpointCreateDeployment: {Requests: 60, Window: time.Second, Caps: []vercelsim.Limit{{Requests: 8, Window: 3 * time.Second}}},
		}},
		Worker:     worker.Config{Concurrency: 8},
		NewLimiter: sharedBudget(budget.Config{Limits: map[vercel.Endpoint]budget.Limit{vercel.EndpointCreateDeployment: windows}, Logger: quietLogger()}),
	})
	tgz := h.Tarball(t, nil)
	var ids []string
	start := time.Now()
	for i := range jobsN {
		ids = append(ids, h.Submit(t, jobs.Request{Tenant: "acme", Name: fmt.Sprintf("windows%d", i)}, tgz).ID)
	}
	got := h.WaitTerminal(t, "acme", 2*time.Minute, ids...)
	for _, id := range ids {
		if got[id].Type != jobs.TypeSucceeded {
			t.Fatalf("%s: %s %+v", id, got[id].Type, got[id].Data.Error)
		}
	}
	// 20 deployments at 8 per 3 s need two full windows after the first:
	// had the cap not parked them, the pace alone would take 3.3 s.
	if el := time.Since(start); el < 6*time.Second {
		t.Fatalf("%d deployments in %v: the 3 s window was not kept", jobsN, el)
	}
	stats := h.Sim.Stats()
	limited := stats.RateLimited[vercel.EndpointCreateDeployment]
	t.Logf("%d deployments created, %d answered 429", stats.Requests[vercel.EndpointCreateDeployment], limited)
	if limited > 1 {
		t.Fatalf("%d deployment creations answered 429, want at most 1", limited)
	}
}

// Waiting for budget is not failing: jobs that wait far longer than their
// lease for a slow bucket keep their lease (heartbeats), spend no retry
// attempt and are delivered once.
func TestLongBudgetWaitsKeepTheLeaseAndSpendNoAttempts(t *testing.T) {
	t.Parallel()
	slow := map[vercel.Endpoint]budget.Limit{vercel.EndpointCreateProject: {Requests: 1, Window: 1500 * time.Millisecond}}
	h := jobstest.Start(t, jobstest.Config{
		Setup:  jobs.SetupConfig{AckWait: time.Second},
		Worker: worker.Config{Concurrency: 4, MaxAttempts: 1},
		Sim:    vercelsim.Config{RateLimits: map[vercel.Endpoint]vercelsim.Limit{vercel.EndpointCreateProject: {Requests: 1, Window: 1500 * time.Millisecond}}},
		NewLimiter: func(tb testing.TB, js jetstream.JetStream) vercel.Limiter {
			b, err := budget.New(budget.NewMemoryStore(), budget.Config{Limits: slow})
			if err != nil {
				tb.Fatal(err)
			}
			return b
		},
	})
	tgz := h.Tarball(t, nil)
	var ids []string
	for i := range 4 { // the last waits about 4.5 s: four and a half leases
		ids = append(ids, h.Submit(t, jobs.Request{Tenant: "acme", Name: fmt.Sprintf("patient%d", i)}, tgz).ID)
	}
	got := h.WaitTerminal(t, "acme", time.Minute, ids...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range ids {
		ev := got[id]
		if ev.Type != jobs.TypeSucceeded || ev.Data.Attempt != 1 {
			t.Fatalf("%s: %s on delivery %d %+v", id, ev.Type, ev.Data.Attempt, ev.Data.Error)
		}
		st, err := jobs.ReadState(ctx, h.Assets.Jobs, "acme", id)
		if err != nil || st == nil || st.Attempts != 0 {
			t.Fatalf("%s: state %+v %v: budget waits must not count as attempts", id, st, err)
		}
	}
	if redelivered, _ := h.Deliveries(t); redelivered != 0 {
		t.Fatalf("%d redeliveries: a lease lapsed while waiting for budget", redelivered)
	}
}

// A 402 daily cap holds back deployment creation only: the other steps of
// every job go on, no job fails, and all finish once the cap resets.
func TestPlanCapPausesOnlyDeploymentCreation(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64 // the simulator's clock, jumped a day ahead below
	simNow := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	h := jobstest.Start(t, jobstest.Config{
		Sim:    vercelsim.Config{DailyDeploymentCap: 2, Clock: simNow},
		Worker: worker.Config{Concurrency: 4, MaxAttempts: 1, MaxRateLimitWait: 200 * time.Millisecond},
		NewLimiter: func(tb testing.TB, js jetstream.JetStream) vercel.Limiter {
			b, err := budget.New(budget.NewMemoryStore(), budget.Config{MaxPause: 200 * time.Millisecond, Logger: quietLogger()})
			if err != nil {
				tb.Fatal(err)
			}
			return b
		},
	})
	tgz := h.Tarball(t, nil)
	var ids []string
	for i := range 4 {
		ids = append(ids, h.Submit(t, jobs.Request{Tenant: "acme", Name: fmt.Sprintf("capped%d", i)}, tgz).ID)
	}
	// Wait until the cap has refused a deployment and every job got past
	// the steps before it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		uploaded := 0
		for _, id := range ids {
			st, err := jobs.ReadState(ctx, h.Assets.Jobs, "acme", id)
			if err == nil && st != nil && (st.Step == jobs.StepUploadSource || st.Done() || st.DeploymentID != "") {
				uploaded++
			}
		}
		if uploaded == len(ids) && h.Sim.Stats().PaymentRequired > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("jobs did not all reach deployment creation under the cap (402s: %d)", h.Sim.Stats().PaymentRequired)
		case <-time.After(20 * time.Millisecond):
		}
	}
	offset.Store(int64(25 * time.Hour)) // the daily window ends
	got := h.WaitTerminal(t, "acme", time.Minute, ids...)
	for _, id := range ids {
		if got[id].Type != jobs.TypeSucceeded {
			t.Fatalf("%s: %s %+v", id, got[id].Type, got[id].Data.Error)
		}
		st, _ := jobs.ReadState(ctx, h.Assets.Jobs, "acme", id)
		if st.Attempts != 0 {
			t.Fatalf("%s: %d attempts counted for plan-cap waits", id, st.Attempts)
		}
	}
}

// sharedBudget makes each pool's limiter a budget over the pools' shared
// KV bucket.
func sharedBudget(cfg budget.Config) func(testing.TB, jetstream.JetStream) vercel.Limiter {
	return func(tb testing.TB, js jetstream.JetStream) vercel.Limiter {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		store, err := budget.NewKVStore(ctx, js, budget.KVStoreConfig{})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(store.Close)
		b, err := budget.New(store, cfg)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
