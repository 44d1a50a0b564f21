package worker_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go/jetstream"
)

func quotas(t *testing.T, store budget.Store, q map[string]string) *budget.Quotas {
	t.Helper()
	caps := map[string][]budget.Cap{}
	for tenant, spec := range q {
		c, err := budget.ParseQuota(spec)
		if err != nil {
			t.Fatal(err)
		}
		caps[tenant] = c
	}
	qs, err := budget.NewQuotas(store, caps, nil)
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// startedAt is when each job of tenant first started, sorted.
func startedAt(t *testing.T, h *jobstest.Harness, tenant string, ids []string) []time.Time {
	t.Helper()
	var out []time.Time
	for _, id := range ids {
		st, err := jobs.ReadState(context.Background(), h.Assets.Jobs, tenant, id)
		if err != nil || st == nil {
			t.Fatalf("%s: state %v, %v", id, st, err)
		}
		out = append(out, st.StartedAt)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// A tenant past its quota waits for it, its requests held rather than
// retried, while another tenant's deploy runs at once.
func TestQuotaHoldsRequestsUntilItAllows(t *testing.T) {
	t.Parallel()
	// Long enough that a loaded machine runs the first two deploys and
	// beta's well within it.
	const window = 4 * time.Second
	h := jobstest.Start(t, jobstest.Config{
		Worker: worker.Config{Concurrency: 4, Quotas: quotas(t, budget.NewMemoryStore(), map[string]string{"acme": "2/4s"})},
	})
	tgz := h.Tarball(t, nil)
	var acme []string
	for i := range 4 {
		acme = append(acme, h.Submit(t, jobstest.Request("acme", fmt.Sprint("q-", i)), tgz).ID)
	}
	beta := h.Submit(t, jobstest.Request("beta", "single"), tgz).ID
	if ev := h.WaitTerminal(t, "beta", waitLong, beta)[beta]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("beta: %s %+v", ev.Type, ev.Data.Error)
	}
	got := h.WaitTerminal(t, "acme", waitLong, acme...)
	for _, id := range acme {
		if got[id].Type != jobs.TypeSucceeded {
			t.Fatalf("%s: %s %+v", id, got[id].Type, got[id].Data.Error)
		}
	}
	// The quota held: no three of acme's deploys started in one window.
	starts := startedAt(t, h, "acme", acme)
	for i := 2; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-2]); gap < window {
			t.Fatalf("acme's deploys %d and %d started %s apart, within the quota's window of %s", i-1, i+1, gap, window)
		}
	}
	// beta's deploy did not wait for acme's quota.
	if b := startedAt(t, h, "beta", []string{beta})[0]; !b.Before(starts[2]) {
		t.Fatalf("beta's deploy started %s after acme's quota let its third go", b.Sub(starts[2]))
	}
	// Held, not handed back: no request was delivered twice.
	if redelivered, _ := h.Deliveries(t); redelivered != 0 {
		t.Fatalf("%d requests were redelivered while waiting for the quota", redelivered)
	}
}

// A request that asks for it is rejected at once when its tenant's quota
// is spent, with a typed reason and the time the quota allows another;
// a held request can be cancelled, and spends no quota.
func TestQuotaRejectsWhenAsked(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		Worker: worker.Config{Quotas: quotas(t, budget.NewMemoryStore(), map[string]string{"acme": "1/1h"})},
	})
	tgz := h.Tarball(t, nil)
	first := h.Submit(t, jobstest.Request("acme", "first"), tgz).ID
	if ev := h.WaitTerminal(t, "acme", waitLong, first)[first]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("first: %s %+v", ev.Type, ev.Data.Error)
	}
	submitted := time.Now()
	req := jobstest.Request("acme", "refused")
	req.OverQuota = jobs.OverQuotaReject
	refused := h.Submit(t, req, tgz).ID
	ev := h.WaitTerminal(t, "acme", waitLong, refused)[refused]
	if ev.Type != jobs.TypeRejected || ev.Data.Error == nil || ev.Data.Error.Code != jobs.CodeQuotaExceeded || ev.Data.Error.RetryAt == nil {
		t.Fatalf("over quota with reject: %s %+v", ev.Type, ev.Data.Error)
	}
	if wait := ev.Data.Error.RetryAt.Sub(submitted); wait < 59*time.Minute || wait > 62*time.Minute {
		t.Fatalf("retryAt %s is %s away, want about an hour", ev.Data.Error.RetryAt, wait)
	}
	// A request that waits is held; cancelled, it ends at once.
	waiting := h.Submit(t, jobstest.Request("acme", "waiting"), tgz).ID
	jobstest.Eventually(t, waitLong, "the waiting request was never held", func() bool {
		return h.LaneInfo(t, "acme").NumAckPending == 1
	})
	jobstest.Eventually(t, waitLong, "the held request never said it waits for the quota", func() bool {
		for _, ev := range h.Events(t, "acme", waiting) {
			if ev.Type == jobs.TypeWaiting && ev.Data.Waiting == jobs.WaitingQuota {
				return true
			}
		}
		return false
	})
	if _, err := h.Client.Cancel(context.Background(), "acme", waiting); err != nil {
		t.Fatal(err)
	}
	if ev := h.WaitTerminal(t, "acme", waitLong, waiting)[waiting]; ev.Type != jobs.TypeCancelled {
		t.Fatalf("cancelled while held: %s %+v", ev.Type, ev.Data.Error)
	}
	// The quota is still spent: the cancel took none of it back, nor gave any.
	req = jobstest.Request("acme", "refused-again")
	req.OverQuota = jobs.OverQuotaReject
	again := h.Submit(t, req, tgz).ID
	if ev := h.WaitTerminal(t, "acme", waitLong, again)[again]; ev.Type != jobs.TypeRejected {
		t.Fatalf("second rejection: %s %+v", ev.Type, ev.Data.Error)
	}
	if n := len(h.Sim.Stats().Requests); n == 0 {
		t.Fatal("the simulator saw nothing")
	}
	if projects := h.Sim.Stats().Requests["projects.create"]; projects != 1 {
		t.Fatalf("%d projects created, want one: only the first request was admitted", projects)
	}
}

// Workers in several processes admit a tenant's quota exactly: it is
// counted in the fleet's store.
func TestQuotaIsSharedByTheFleet(t *testing.T) {
	t.Parallel()
	const quota, submitted = 3, 8
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true, Sim: vercelsim.Config{BuildTime: 100 * time.Millisecond}})
	for range 2 {
		store := kvStore(t, h)
		h.RunWorker(t, context.Background(), h.NewPipeline(t), worker.Config{Concurrency: 4,
			Quotas: quotas(t, store, map[string]string{"acme": fmt.Sprintf("%d/1h", quota)})})
	}
	tgz := h.Tarball(t, nil)
	var ids []string
	for i := range submitted {
		req := jobstest.Request("acme", fmt.Sprint("fleet-", i))
		req.OverQuota = jobs.OverQuotaReject
		ids = append(ids, h.Submit(t, req, tgz).ID)
	}
	got := h.WaitTerminal(t, "acme", waitLong, ids...)
	succeeded, rejected := 0, 0
	for _, ev := range got {
		switch {
		case ev.Type == jobs.TypeSucceeded:
			succeeded++
		case ev.Type == jobs.TypeRejected && ev.Data.Error.Code == jobs.CodeQuotaExceeded:
			rejected++
		default:
			t.Fatalf("%s: %s %+v", ev.Subject, ev.Type, ev.Data.Error)
		}
	}
	if succeeded != quota || rejected != submitted-quota {
		t.Fatalf("two workers ran %d and rejected %d under a quota of %d", succeeded, rejected, quota)
	}
}

// kvStore is a budget store on a connection of its own, as another
// worker process has.
func kvStore(t *testing.T, h *jobstest.Harness) budget.Store {
	t.Helper()
	nc, err := h.NATS.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	s, err := budget.NewKVStore(ctx, js, budget.KVStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
