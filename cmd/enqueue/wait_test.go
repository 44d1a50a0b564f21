package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
)

func TestFollowReplaysRequestsAcrossConsumers(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	tgz := h.Tarball(t, nil)
	var subjects, ids []string
	for _, tenant := range []string{"acme", "acme", "globex"} {
		sub := h.Submit(t, jobs.Request{Tenant: tenant, Name: "app", Framework: "nextjs"}, tgz)
		subjects = append(subjects, jobs.EventSubject(tenant, sub.ID))
		ids = append(ids, sub.ID)
	}
	// Started after the submits, maybe after the ends: the replay from the
	// start of each subject is what makes that safe.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	f, err := follow(ctx, h.JS, subjects, 2, 0) // two consumers
	if err != nil {
		t.Fatal(err)
	}
	defer f.stop()
	var ended []string
	for len(ended) < len(ids) {
		select {
		case rc := <-f.events:
			if rc.err != nil {
				t.Fatal(rc.err)
			}
			if rc.ev.Terminal() {
				ended = append(ended, rc.ev.Data.RequestID)
			}
		case <-ctx.Done():
			t.Fatalf("only %d of %d requests ended", len(ended), len(ids))
		}
	}
	slices.Sort(ended)
	slices.Sort(ids)
	if !slices.Equal(ended, ids) {
		t.Errorf("ended %v; want %v", ended, ids)
	}
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	app := filepath.Join(copyExamples(t), "nextjs-prisma")
	limits := jobs.DefaultLimits()
	tests := []struct {
		name   string
		plans  []*plan
		limits jobs.Limits
		want   []string
	}{
		{
			name:   "source over the size limit",
			plans:  []*plan{{source: app, req: jobs.Request{Tenant: "acme", Name: "app"}}},
			limits: jobs.Limits{MaxSourceBytes: 100, MaxRequestBytes: limits.MaxRequestBytes},
			want:   []string{"source " + app + ": packed, it exceeds the 100 bytes limit on a deploy's source"},
		},
		{
			name:   "request over the size limit",
			plans:  []*plan{{source: app, req: jobs.Request{Tenant: "acme", Name: "app", Env: map[string]string{"BIG": strings.Repeat("x", 2000)}}}},
			limits: jobs.Limits{MaxSourceBytes: limits.MaxSourceBytes, MaxRequestBytes: 1000},
			want:   []string{"request is 2", "more than the 1000 allowed"},
		},
		{
			name: "one id on two lines",
			plans: []*plan{
				{where: "f.jsonl:1", line: 1, source: app, req: jobs.Request{ID: "same", Tenant: "acme", Name: "app"}},
				{where: "f.jsonl:2", line: 2, source: app, req: jobs.Request{ID: "same", Tenant: "globex", Name: "app"}},
			},
			limits: limits,
			want:   []string{`f.jsonl:2: id "same" is already used by f.jsonl:1`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := prepare(tt.plans, tt.limits)
			if len(errs) != 1 {
				t.Fatalf("want 1 error; got %v", errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs[0].Error(), w) {
					t.Errorf("error %q lacks %q", errs[0], w)
				}
			}
		})
	}
}

func TestTarballOverTheLimit(t *testing.T) {
	t.Parallel()
	tgz := writeFile(t, t.TempDir(), "app.tgz", string(jobstest.Tarball(t, nil)))
	_, err := newSources(100).load(tgz)
	if err == nil || !strings.Contains(err.Error(), "bytes, over the 100 bytes limit on a deploy's source") {
		t.Fatalf("want a clear size error; got %v", err)
	}
}
