package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

const waitLong = 60 * time.Second

func TestManyRequestsSucceed(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Workers: 2})
	tgz := h.Tarball(t, nil)
	const n = 40
	ids := make([]string, 0, n)
	for i := range n {
		req := jobstest.Request("acme", fmt.Sprintf("app%d", i))
		if i%2 == 1 {
			req.Framework = "" // no preset: deployed as "Other"
		}
		sub := h.Submit(t, req, tgz)
		ids = append(ids, sub.ID)
	}
	got := h.WaitTerminal(t, "acme", waitLong, ids...)
	for _, id := range ids {
		ev := got[id]
		if ev.Type != jobs.TypeSucceeded {
			t.Fatalf("%s ended %s: %+v", id, ev.Type, ev.Data.Error)
		}
		d := ev.Data
		if d.ProjectID == "" || d.DeploymentID == "" || !strings.HasPrefix(d.URL, "https://") || d.ClaimCode == "" {
			t.Fatalf("succeeded event lacks results: %+v", d)
		}
		if !strings.HasPrefix(d.ClaimURL, "https://vercel.com/claim-deployment?code="+d.ClaimCode) ||
			!strings.Contains(d.ClaimURL, "returnUrl=https%3A%2F%2Fplatform.example%2Fback") {
			t.Fatalf("claim URL %q", d.ClaimURL)
		}
		evs := h.Events(t, "acme", id)
		var steps []jobs.Step
		terminal := 0
		for _, e := range evs {
			if e.Terminal() {
				terminal++
			} else {
				steps = append(steps, e.Data.Step)
			}
		}
		if terminal != 1 || !slices.Equal(steps, jobs.Steps()) {
			t.Fatalf("%s: %d terminal events, steps %v", id, terminal, steps)
		}
	}
	stats := h.Sim.Stats()
	for name, count := range stats.ProjectsCreated {
		if count != 1 {
			t.Fatalf("project %s created %d times", name, count)
		}
	}
	if len(stats.ProjectsCreated) != n {
		t.Fatalf("%d projects created, want %d", len(stats.ProjectsCreated), n)
	}
	// One tarball, one upload for the whole team.
	if up := stats.Requests[vercel.EndpointUploadFile]; up != 1 {
		t.Fatalf("uploads = %d, want 1 (content-addressed, once per team)", up)
	}
	assertQueueEmpty(t, h)
}

// assertQueueEmpty waits for the work queue to empty: a request is acked
// just after its terminal event is published.
func assertQueueEmpty(t *testing.T, h *jobstest.Harness) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var left uint64
	for {
		info, err := h.Assets.Requests.Info(ctx)
		if err != nil {
			t.Fatalf("%d requests left in the work queue (%v)", left, err)
		}
		if left = info.State.Msgs; left == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d requests left in the work queue", left)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestFailingBuildFailsWithReasonAndCleansUp(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	sub := h.Submit(t, jobstest.Request("acme", "broken"), jobstest.FailingTarball(t, "Error: Command \"npm run build\" exited with 1"))
	ev := h.WaitTerminal(t, "acme", waitLong, sub.ID)[sub.ID]
	if ev.Type != jobs.TypeFailed {
		t.Fatalf("type %s", ev.Type)
	}
	e := ev.Data.Error
	if e == nil || e.Step != jobs.StepWaitReady || e.Code != "BUILD_FAILED" || !strings.Contains(e.Message, "exited with 1") {
		t.Fatalf("error %+v", e)
	}
	if strings.Join(ev.Data.Cleaned, ",") != "database,project" {
		t.Fatalf("cleaned %v", ev.Data.Cleaned)
	}
	if got := len(h.Sim.Projects()); got != 0 {
		t.Fatalf("%d projects left after clean-up", got)
	}
	dls := deadLetters(t, h, "acme")
	if len(dls) != 1 || dls[0].ID != sub.ID || dls[0].Reason != jobs.DLQReasonFailed || dls[0].Error.Code != "BUILD_FAILED" {
		t.Fatalf("dead letters %+v", dls)
	}
	assertQueueEmpty(t, h)
}

func deadLetters(t *testing.T, h *jobstest.Harness, tenant string) []jobs.DeadLetterEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dls, err := h.Client.DeadLetters(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	return dls
}

func TestBadInputIsRejectedOnce(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	valid := func(mut func(m map[string]any)) string {
		m := map[string]any{
			"version": 1, "id": "ok", "tenant": "acme", "name": "app",
			"source": map[string]any{"bucket": jobs.BucketSources, "sha1": strings.Repeat("a", 40), "size": 10},
		}
		mut(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name, id, body, field, contains string
	}{
		{"not json", "seq", "deploy me please", "", "not valid JSON"},
		{"unknown version", "v9", valid(func(m map[string]any) { m["id"] = "v9"; m["version"] = 9 }), "version", "not supported"},
		{"bad name", "badname", valid(func(m map[string]any) { m["id"] = "badname"; m["name"] = "Bad Name" }), "name", "lowercase"},
		{"tenant mismatch", "other", valid(func(m map[string]any) { m["id"] = "other"; m["tenant"] = "globex" }), "tenant", "does not match"},
		{"too large", "big", valid(func(m map[string]any) {
			m["id"] = "big"
			m["source"].(map[string]any)["size"] = 1 << 40
		}), "source.size", "more than"},
		{"unknown field", "typo", valid(func(m map[string]any) { m["id"] = "typo"; m["retrunUrl"] = "x" }), "retrunUrl", "unknown field"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for _, tt := range tests {
		if _, err := h.JS.Publish(ctx, jobs.RequestSubject("acme", tt.id), []byte(tt.body)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]jobs.Event{}
	w, err := h.Client.Watch(ctx, jobs.WatchFilter{Tenant: "acme", FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev, err := range w.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type != jobs.TypeRejected {
			t.Fatalf("unexpected event %s", ev.Type)
		}
		seen[ev.Data.RequestID] = ev
		if len(seen) == len(tests) {
			break
		}
	}
	for _, tt := range tests {
		ev, ok := seen[tt.id]
		if !ok {
			t.Fatalf("%s: no rejection event", tt.name)
		}
		if ev.Data.Error.Field != tt.field || !strings.Contains(ev.Data.Error.Message, tt.contains) {
			t.Fatalf("%s: rejection %+v", tt.name, ev.Data.Error)
		}
	}
	dls := deadLetters(t, h, "acme")
	if len(dls) != len(tests) {
		t.Fatalf("%d dead letters, want %d", len(dls), len(tests))
	}
	for _, dl := range dls {
		if dl.Reason != jobs.DLQReasonRejected || (dl.Request == nil && dl.RequestRaw == nil) || dl.Deliveries != 1 {
			t.Fatalf("dead letter %+v", dl)
		}
	}
	assertQueueEmpty(t, h)
	if redelivered, unsettled := h.Deliveries(t); redelivered != 0 || unsettled != 0 {
		t.Fatalf("rejected requests were redelivered (%d) or left unsettled (%d)", redelivered, unsettled)
	}
	if calls := jobCalls(h, 1); len(calls) != 0 {
		t.Fatalf("rejected requests called the API: %v", calls)
	}
}

func TestDuplicateSubmitRunsOneJob(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	tgz := h.Tarball(t, nil)
	req := jobstest.Request("acme", "dup")
	req.ID = "same-id"
	first := h.Submit(t, req, tgz)
	second := h.Submit(t, req, tgz)
	if first.Duplicate || !second.Duplicate {
		t.Fatalf("duplicate flags: first %v, second %v", first.Duplicate, second.Duplicate)
	}
	ev := h.WaitTerminal(t, "acme", waitLong, "same-id")["same-id"]
	if ev.Type != jobs.TypeSucceeded {
		t.Fatalf("type %s", ev.Type)
	}
	// A late retry, long after the dedup window, returns the outcome.
	late := h.Submit(t, req, tgz)
	if !late.Duplicate || late.Existing == nil || late.Existing.Status != jobs.StatusSucceeded {
		t.Fatalf("late retry: %+v", late)
	}
	if n := h.Sim.Stats().ProjectsCreated[jobs.ProjectName(&req)]; n != 1 {
		t.Fatalf("project created %d times", n)
	}
	terminals := 0
	for _, e := range h.Events(t, "acme", "same-id") {
		if e.Terminal() {
			terminals++
		}
	}
	if terminals != 1 {
		t.Fatalf("%d terminal events", terminals)
	}
}

func TestLostResponsesDoNotDuplicateResources(t *testing.T) {
	t.Parallel()
	after := vercelsim.Fault{ErrorAfter: 0.5}
	h := jobstest.Start(t, jobstest.Config{
		Sim: vercelsim.Config{Seed: 7, Faults: map[vercel.Endpoint]vercelsim.Fault{
			vercel.EndpointCreateProject:    after,
			vercel.EndpointCreateStore:      after,
			vercel.EndpointCreateDeployment: after,
			vercel.EndpointConnectStore:     after,
			vercel.EndpointGetDeployment:    {ErrorBefore: 0.3},
		}},
		Worker: worker.Config{MaxAttempts: 30},
	})
	tgz := h.Tarball(t, nil)
	var ids []string
	for i := range 10 {
		ids = append(ids, h.Submit(t, jobstest.Request("acme", fmt.Sprintf("flaky%d", i)), tgz).ID)
	}
	got := h.WaitTerminal(t, "acme", waitLong, ids...)
	stats := h.Sim.Stats()
	for _, id := range ids {
		if got[id].Type != jobs.TypeSucceeded {
			t.Fatalf("%s: %s %+v", id, got[id].Type, got[id].Data.Error)
		}
	}
	for name, n := range stats.ProjectsCreated {
		if n != 1 {
			t.Fatalf("project %s created %d times", name, n)
		}
	}
	for name, n := range stats.StoresCreated {
		if n != 1 {
			t.Fatalf("store %s created %d times", name, n)
		}
	}
	for project, n := range stats.DeploymentsCreated {
		if n != 1 {
			t.Fatalf("project %s has %d deployments", project, n)
		}
	}
}

func TestSourceTarballsExpireAfterTheirJobs(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Worker: worker.Config{
		Sources: worker.JanitorConfig{Grace: time.Millisecond, Interval: 20 * time.Millisecond},
	}})
	sub := h.Submit(t, jobstest.Request("acme", "tidy"), h.Tarball(t, nil))
	h.WaitTerminal(t, "acme", waitLong, sub.ID)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for {
		list, err := h.Assets.Sources.List(ctx)
		if err == nil && len(list) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("tarball still stored after its job ended: %v", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	keys, err := h.Assets.SourceRefs.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		t.Fatalf("reference %s left behind", k)
	}
}

// jobCalls is the simulator's count of requests by endpoint, less the one
// projects.get with which each of the workers started checked its
// credentials: the calls jobs made.
func jobCalls(h *jobstest.Harness, workers int) map[vercel.Endpoint]int {
	calls := maps.Clone(h.Sim.Stats().Requests)
	if calls[vercel.EndpointGetProject] -= workers; calls[vercel.EndpointGetProject] <= 0 {
		delete(calls, vercel.EndpointGetProject)
	}
	return calls
}
