package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
)

// Jobs filters by tenant, status, error code and search, and counts what
// it read; History gives a request's events in order.
func TestJobsQueryAndHistory(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	ok1 := h.Submit(t, jobstest.Request("acme", "one"), h.Tarball(t, nil)).ID
	bad := h.Submit(t, jobstest.Request("acme", "two"), jobstest.FailingTarball(t, "boom")).ID
	other := h.Submit(t, jobstest.Request("globex", "three"), h.Tarball(t, nil)).ID
	h.WaitTerminal(t, "acme", waitLong, ok1, bad)
	h.WaitTerminal(t, "globex", waitLong, other)
	ctx := context.Background()

	all, err := h.Client.Jobs(ctx, jobs.JobQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if all.Total != 3 || all.Matched != 3 || all.ByStatus[jobs.StatusSucceeded] != 2 || all.ByStatus[jobs.StatusFailed] != 1 ||
		all.Codes["BUILD_FAILED"] != 1 || all.Ended5m[jobs.StatusSucceeded] != 2 || all.Ended1h[jobs.StatusFailed] != 1 {
		t.Fatalf("every job: %+v", all)
	}
	for _, c := range []struct {
		q    jobs.JobQuery
		want []string
	}{
		{jobs.JobQuery{Tenant: "acme"}, []string{bad, ok1}},
		{jobs.JobQuery{Status: jobs.StatusFailed}, []string{bad}},
		{jobs.JobQuery{Code: "BUILD_FAILED"}, []string{bad}},
		{jobs.JobQuery{Search: other[:12]}, []string{other}},
		{jobs.JobQuery{Tenant: "acme", Limit: 1}, []string{bad}},
	} {
		got, err := h.Client.Jobs(ctx, c.q)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, st := range got.Jobs {
			ids[st.ID] = true
		}
		if len(got.Jobs) != len(c.want) {
			t.Errorf("%+v: %d jobs, want %v", c.q, len(got.Jobs), c.want)
			continue
		}
		if c.q.Limit == 0 {
			for _, id := range c.want {
				if !ids[id] {
					t.Errorf("%+v: %s missing", c.q, id)
				}
			}
		}
	}

	evs, err := h.Client.History(ctx, "acme", bad)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < 2 || evs[0].Type != jobs.TypeStepCompleted || evs[len(evs)-1].Type != jobs.TypeFailed {
		t.Fatalf("history of the failed job: %d events", len(evs))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Time.Before(evs[i-1].Time) {
			t.Errorf("event %d is older than the one before it", i)
		}
	}
}

// With many jobs kept, Jobs reads the newest back to an hour ago and no
// further when that gives the page: the counts say what was read, the
// throughput stays exact, and a filter that finds too few reads on to
// the oldest.
func TestJobsReadsTheNewestFirst(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true})
	ctx := context.Background()
	now := time.Now()
	put := func(tenant, id string, status jobs.Status, at time.Time, code string) {
		st := jobs.JobState{ID: id, Tenant: tenant, Status: status, UpdatedAt: at}
		if code != "" {
			st.Terminal = &jobs.Event{Data: jobs.EventData{Error: &jobs.EventError{Code: code}}}
		}
		data, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Assets.Jobs.Put(ctx, tenant+"."+id, data); err != nil {
			t.Fatal(err)
		}
	}
	// A month of old jobs, then the last hour's, written in time order as
	// the workers would.
	const old, recent = 2000, 40
	for i := range old {
		at := now.Add(-30*24*time.Hour + time.Duration(i)*time.Minute)
		code := ""
		status := jobs.StatusSucceeded
		if i == 7 {
			status, code = jobs.StatusFailed, "RARE_OLD_CODE"
		}
		put("acme", fmt.Sprintf("old-%04d", i), status, at, code)
	}
	for i := range recent {
		at := now.Add(-50*time.Minute + time.Duration(i)*time.Minute)
		status, code := jobs.StatusSucceeded, ""
		if i%10 == 0 {
			status, code = jobs.StatusFailed, "BUILD_FAILED"
		}
		put([]string{"acme", "globex"}[i%2], fmt.Sprintf("new-%04d", i), status, at, code)
	}

	page, err := h.Client.Jobs(ctx, jobs.JobQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	// The last hour holds more than the page: nothing older is read.
	if page.Total != old+recent || page.Complete || page.Read != recent {
		t.Fatalf("total %d, read %d, complete %v: want %d kept and the last hour's %d read", page.Total, page.Read, page.Complete, old+recent, recent)
	}
	if len(page.Jobs) != 10 || page.Jobs[0].ID != "new-0039" || page.Jobs[9].ID != "new-0030" {
		t.Errorf("want the 10 newest, newest first; got %d from %v", len(page.Jobs), ids(page.Jobs))
	}
	if got := page.Ended1h[jobs.StatusSucceeded] + page.Ended1h[jobs.StatusFailed]; got != recent || page.Ended1h[jobs.StatusFailed] != 4 {
		t.Errorf("ended in the last hour %v: want all %d, 4 failed", page.Ended1h, recent)
	}
	if page.Codes["RARE_OLD_CODE"] != 0 || page.Codes["BUILD_FAILED"] != 4 {
		t.Errorf("codes %v: want those read only", page.Codes)
	}

	// A page larger than the last hour: read on back, not to the start.
	wide, err := h.Client.Jobs(ctx, jobs.JobQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(wide.Jobs) != 100 || wide.Complete || wide.Read < 100 || wide.Read > 400 || wide.Jobs[40].ID != "old-1999" {
		t.Errorf("a page of 100: %d jobs, read %d, complete %v", len(wide.Jobs), wide.Read, wide.Complete)
	}
	// A code seen a month ago: the read goes on to the oldest job.
	rare, err := h.Client.Jobs(ctx, jobs.JobQuery{Code: "RARE_OLD_CODE", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !rare.Complete || rare.Read != old+recent || len(rare.Jobs) != 1 || rare.Jobs[0].ID != "old-0007" {
		t.Errorf("rare code: complete %v, read %d, jobs %v", rare.Complete, rare.Read, ids(rare.Jobs))
	}
	// One tenant's: counted and read on its own subjects.
	g, err := h.Client.Jobs(ctx, jobs.JobQuery{Tenant: "globex", Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if g.Total != recent/2 || len(g.Jobs) != 5 || g.Jobs[0].ID != "new-0039" {
		t.Errorf("globex: total %d, jobs %v", g.Total, ids(g.Jobs))
	}
	for _, st := range g.Jobs {
		if st.Tenant != "globex" {
			t.Errorf("another tenant's job in globex's list: %s/%s", st.Tenant, st.ID)
		}
	}
	if none, err := h.Client.Jobs(ctx, jobs.JobQuery{Tenant: "initech", Limit: 5}); err != nil || none.Total != 0 || !none.Complete || len(none.Jobs) != 0 {
		t.Errorf("a tenant without jobs: %+v, %v", none, err)
	}
}

func ids(list []jobs.JobState) []string {
	var out []string
	for _, st := range list {
		out = append(out, st.ID)
	}
	return out
}
