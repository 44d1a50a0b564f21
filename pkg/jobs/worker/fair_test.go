package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deployq/deployq/internal/streamget"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// terminalOrder lists the tenants of the terminal events stored so far,
// in the order they were stored.
func terminalOrder(t *testing.T, h *jobstest.Harness) []string {
	t.Helper()
	var out []string
	for _, ev := range jobstest.StoredEvents(t, h.JS, "deploy.events.*.*") {
		if ev.Type.Terminal() {
			out = append(out, ev.Data.Tenant)
		}
	}
	return out
}

// startOrder lists the tenants of the jobs in the order the worker took
// them: the order their checkpoints were first written.
func startOrder(t *testing.T, h *jobstest.Harness) []string {
	t.Helper()
	var out []string
	for _, st := range startedJobs(t, h) {
		out = append(out, st.Tenant)
	}
	return out
}

// startedJobs lists the jobs in the order the worker took them.
func startedJobs(t *testing.T, h *jobstest.Harness) []jobs.JobState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	s, err := h.JS.Stream(ctx, "KV_"+jobs.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := streamget.All(ctx, s, "$KV."+jobs.BucketJobs+".>")
	if err != nil {
		t.Fatal(err)
	}
	var out []jobs.JobState
	seen := map[string]bool{}
	for _, m := range msgs {
		var st jobs.JobState
		if json.Unmarshal(m.Data, &st) != nil {
			continue
		}
		if key := st.Tenant + "." + st.ID; !seen[key] {
			seen[key] = true
			out = append(out, st)
		}
	}
	return out
}

// One tenant's burst does not hold up another tenant's single deploy: it
// takes the next free slot, not the place behind the whole burst.
func TestNoisyNeighbourDoesNotStallASingleDeploy(t *testing.T) {
	t.Parallel()
	const concurrency, burst = 4, 40
	h := jobstest.Start(t, jobstest.Config{
		Sim:    vercelsim.Config{BuildTime: 200 * time.Millisecond},
		Worker: worker.Config{Concurrency: concurrency},
	})
	tgz := h.Tarball(t, nil)
	var bigIDs []string
	for i := range burst {
		bigIDs = append(bigIDs, h.Submit(t, jobstest.Request("big", fmt.Sprint("burst-", i)), tgz).ID)
	}
	jobstest.Eventually(t, waitLong, "big's burst never filled the slots", func() bool {
		return h.LaneInfo(t, "big").NumAckPending == concurrency
	})
	small := h.Submit(t, jobstest.Request("small", "single"), tgz).ID
	before := len(terminalOrder(t, h)) // once small's request is queued
	if ev := h.WaitTerminal(t, "small", waitLong, small)[small]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("small: %s %+v", ev.Type, ev.Data.Error)
	}
	h.WaitTerminal(t, "big", waitLong, bigIDs...)
	order := startOrder(t, h)
	bigFirst := 0
	for _, who := range order {
		if who == "small" {
			break
		}
		bigFirst++
	}
	// In arrival order small would start after all forty of big's.
	// Fairly, it takes one of the first slots freed after it came. The
	// jobs running then started together and end together, so up to
	// concurrency slots free at once and the jobs taken with small's
	// write their first checkpoints in any order: at most the jobs
	// running when it came and the others of that first round start
	// before it.
	if bigFirst > before+2*concurrency-1 {
		t.Fatalf("%d of big's deploys started before small's single one (%d had ended when it came): %v", bigFirst, before, order)
	}
	t.Logf("small's deploy started after %d of big's (%d had ended when it came)", bigFirst, before)
}

// Two tenants with bursts share the slots equally while both wait.
func TestTwoBurstsShareTheSlots(t *testing.T) {
	t.Parallel()
	const concurrency, burst = 2, 20
	h := jobstest.Start(t, jobstest.Config{
		Sim:    vercelsim.Config{BuildTime: 100 * time.Millisecond},
		Worker: worker.Config{Concurrency: concurrency},
	})
	tgz := h.Tarball(t, nil)
	ids := map[string][]string{}
	for i := range burst {
		for _, tenant := range []string{"first", "second"} {
			if tenant == "second" && i == 0 {
				continue // second starts one request behind
			}
			ids[tenant] = append(ids[tenant], h.Submit(t, jobstest.Request(tenant, fmt.Sprint("b-", i)), tgz).ID)
		}
	}
	ids["second"] = append(ids["second"], h.Submit(t, jobstest.Request("second", "b-last"), tgz).ID)
	for tenant, list := range ids {
		h.WaitTerminal(t, tenant, waitLong, list...)
	}
	// Over the first half of the starts, when both still had requests
	// waiting, neither got more than a few more than the other.
	order := startOrder(t, h)
	count := map[string]int{}
	for _, who := range order[:burst] {
		count[who]++
	}
	if d := count["first"] - count["second"]; d > 3 || d < -3 {
		t.Fatalf("the first %d completions: %v, want an even split: %v", burst, count, order)
	}
}

// More tenants with work than the stream allows consumers: a tenant whose
// consumer the server refuses waits, the others go on, and it gets its
// consumer once another tenant's idles out.
func TestTenantPastTheLaneLimitWaitsWithoutHoldingOthers(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		Sim:   vercelsim.Config{BuildTime: 50 * time.Millisecond},
		Setup: jobs.SetupConfig{MaxLanes: 1, LaneIdle: 2 * time.Second},
	})
	tgz := h.Tarball(t, nil)
	first := h.Submit(t, jobstest.Request("first", "a"), tgz).ID
	if ev := h.WaitTerminal(t, "first", waitLong, first)[first]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("first: %s %+v", ev.Type, ev.Data.Error)
	}
	// first's consumer holds the only lane: second's is refused.
	late := h.Submit(t, jobstest.Request("second", "b"), tgz).ID
	again := h.Submit(t, jobstest.Request("first", "c"), tgz).ID
	if ev := h.WaitTerminal(t, "first", waitLong, again)[again]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("first, again: %s %+v", ev.Type, ev.Data.Error)
	}
	// Once first's consumer idled out, second's is made and its request runs.
	if ev := h.WaitTerminal(t, "second", waitLong, late)[late]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("second: %s %+v", ev.Type, ev.Data.Error)
	}
}

// A tenant capped at one request running runs them one at a time across
// the fleet (two workers here), while another tenant's run beside them.
func TestTenantMaxRunningHoldsAcrossTheFleet(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		Workers: 2,
		Sim:     vercelsim.Config{BuildTime: 300 * time.Millisecond},
		// No rescan in the test's time: only the end of a capped job can
		// send its worker back to the lane.
		Worker: worker.Config{Concurrency: 4, TenantMaxRunning: map[string]int{"capped": 1}, BacklogInterval: time.Hour},
	})
	tgz := h.Tarball(t, nil)
	ids := map[string][]string{}
	for i := range 3 {
		for _, tenant := range []string{"capped", "free"} {
			ids[tenant] = append(ids[tenant], h.Submit(t, jobstest.Request(tenant, fmt.Sprint("r", i)), tgz).ID)
		}
	}
	spans := map[string][][2]time.Time{}
	for tenant, list := range ids {
		for id, ev := range h.WaitTerminal(t, tenant, waitLong, list...) {
			if ev.Type != jobs.TypeSucceeded {
				t.Fatalf("%s/%s: %s %+v", tenant, id, ev.Type, ev.Data.Error)
			}
			evs := h.Events(t, tenant, id)
			spans[tenant] = append(spans[tenant], [2]time.Time{evs[0].Time, ev.Time})
		}
	}
	c := spans["capped"]
	slices.SortFunc(c, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	for i := 1; i < len(c); i++ {
		if c[i][0].Before(c[i-1][1]) {
			t.Fatalf("capped's deploys %d and %d ran at once: %v", i-1, i, c)
		}
	}
	// free's ran beside capped's, not after them.
	overlap := false
	for _, f := range spans["free"] {
		overlap = overlap || f[0].Before(c[len(c)-1][0])
	}
	if !overlap {
		t.Fatalf("free's deploys waited for capped's: free %v, capped %v", spans["free"], c)
	}
}

// A tenant's interactive request does not wait behind its own batch: it
// takes one of the next free slots, while the batch goes on.
func TestInteractiveGoesBeforeTheTenantsBatch(t *testing.T) {
	t.Parallel()
	const concurrency, batch = 2, 30
	h := jobstest.Start(t, jobstest.Config{
		Sim:    vercelsim.Config{BuildTime: 100 * time.Millisecond},
		Worker: worker.Config{Concurrency: concurrency},
	})
	tgz := h.Tarball(t, nil)
	var ids []string
	for i := range batch {
		r := jobstest.Request("acme", fmt.Sprint("starter-", i))
		r.Priority = jobs.PriorityBatch
		sub := h.Submit(t, r, tgz)
		if sub.Subject != jobs.BatchRequestSubject("acme", sub.ID) {
			t.Fatalf("a batch request went to %s", sub.Subject)
		}
		ids = append(ids, sub.ID)
	}
	jobstest.Eventually(t, waitLong, "the batch never filled the slots", func() bool {
		return len(startedJobs(t, h)) >= concurrency
	})
	before := len(startedJobs(t, h))
	publish := h.Submit(t, jobstest.Request("acme", "publish"), tgz).ID
	if ev := h.WaitTerminal(t, "acme", waitLong, publish)[publish]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("publish: %s %+v", ev.Type, ev.Data.Error)
	}
	h.WaitTerminal(t, "acme", waitLong, ids...)
	started := startedJobs(t, h)
	at := slices.IndexFunc(started, func(st jobs.JobState) bool { return st.ID == publish })
	// In its tenant's arrival order it would start after all thirty. The
	// slots freed after it came go to it first: at most the round taken
	// with it (concurrency) starts before it.
	if at > before+concurrency {
		t.Fatalf("the interactive request was start number %d; %d of the batch had started when it came", at+1, before)
	}
	t.Logf("the interactive request was start number %d (%d of the batch had started when it came)", at+1, before)
}

// Batch work is slowed while its tenant's interactive work waits, never
// starved: it takes one turn in fair.BatchEvery.
func TestBatchIsNotStarved(t *testing.T) {
	t.Parallel()
	const batch, interactive = 10, 40
	// Both queued before the worker starts: its first look finds both
	// lanes waiting.
	h := jobstest.Start(t, jobstest.Config{
		Sim:       vercelsim.Config{BuildTime: 50 * time.Millisecond},
		Worker:    worker.Config{Concurrency: 1},
		NoWorkers: true,
	})
	tgz := h.Tarball(t, nil)
	var ids []string
	isBatch := map[string]bool{}
	for i := range batch {
		r := jobstest.Request("acme", fmt.Sprint("b-", i))
		r.Priority = jobs.PriorityBatch
		id := h.Submit(t, r, tgz).ID
		ids = append(ids, id)
		isBatch[id] = true
	}
	for i := range interactive {
		ids = append(ids, h.Submit(t, jobstest.Request("acme", fmt.Sprint("i-", i)), tgz).ID)
	}
	h.StartWorker(t, t.Context())
	h.WaitTerminal(t, "acme", waitLong, ids...)
	started := startedJobs(t, h)
	// While both waited (the first 5 × batch starts), every fifth start
	// was the batch's, give or take one.
	window := 5 * batch
	batchStarts, early := 0, 0
	for i, st := range started[:window] {
		if isBatch[st.ID] {
			batchStarts++
			if i < 10 {
				early++
			}
		}
	}
	// In arrival order the batch, queued first, would take the first ten.
	if batchStarts < batch-1 || early > 3 {
		var order []string
		for _, st := range started[:window] {
			order = append(order, map[bool]string{true: "b", false: "i"}[isBatch[st.ID]])
		}
		t.Fatalf("%d of the first %d starts were batch requests (%d of the first ten), want about %d (and 2): %v", batchStarts, window, early, batch, order)
	}
}
