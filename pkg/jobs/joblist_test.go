package jobs_test

import (
	"context"
	"testing"

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
