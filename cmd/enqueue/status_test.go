package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
)

func TestStatusOfFinishedRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	if r := b.run(t, "submit", "--tenant", "acme", "--framework", "nextjs", "--source", filepath.Join(b.examples, "nextjs-prisma"), "--id", "done-1", "--wait"); r.code != exitOK {
		t.Fatalf("submit: %v", r)
	}

	r := b.run(t, "status", "done-1")
	if r.code != exitOK {
		t.Fatalf("want exit 0; got %v", r)
	}
	for _, want := range []string{
		"request    done-1\n",
		"tenant     acme\n",
		"status     succeeded\n",
		"last step  create_claim (8/8)\n",
		"url        https://nextjs-prisma-",
		"claim      https://vercel.com/claim-deployment?code=",
		"attempts   0 failed\n",
		"done-1 acme succeeded",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q\n%v", want, r)
		}
	}

	// Connection flags before the command, the others after the id.
	r = runWith(t, nil, "--nats-url", b.env["NATS_URL"], "status", "done-1", "--tenant", "acme", "--json")
	if r.code != exitOK {
		t.Fatalf("want exit 0; got %v", r)
	}
	var got struct {
		State *jobs.JobState `json:"state"`
		Last  *jobs.Event    `json:"last"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if got.State == nil || got.State.Status != jobs.StatusSucceeded || got.Last == nil || got.Last.Type != jobs.TypeSucceeded {
		t.Errorf("want the succeeded state and event; got %s", r.stdout)
	}
}

func TestStatusOfUnknownRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{NoWorkers: true})
	r := b.run(t, "status", "never-submitted")
	if r.code != exitFailed || !strings.Contains(r.stderr, "request never-submitted: no job or event for this request id") {
		t.Fatalf("want exit 1 and a clear message; got %v", r)
	}
}

// A request no worker has taken yet is found in the requests stream,
// with or without its tenant.
func TestStatusOfQueuedRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{NoWorkers: true})
	if r := b.run(t, "submit", "--tenant", "acme", "--source", filepath.Join(b.examples, "nextjs-prisma"), "--id", "waiting-1"); r.code != exitOK {
		t.Fatalf("submit: %v", r)
	}
	for _, args := range [][]string{{"status", "waiting-1", "--tenant", "acme"}, {"status", "waiting-1"}} {
		r := b.run(t, args...)
		if r.code != exitOK || !strings.Contains(r.stdout, "status     queued: waiting for a worker since ") || !strings.Contains(r.stdout, "tenant     acme\n") ||
			!strings.Contains(r.stdout, "deploy.requests.acme.waiting-1") {
			t.Errorf("%v: %v", args, r)
		}
	}
}

// stats shows the queue per tenant, the DLQ and the apps.
func TestStatsShowsTheQueue(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{NoWorkers: true})
	for _, id := range []string{"q-1", "q-2"} {
		if r := b.run(t, "submit", "--tenant", "acme", "--source", filepath.Join(b.examples, "nextjs-prisma"), "--id", id); r.code != exitOK {
			t.Fatalf("submit: %v", r)
		}
	}
	if r := b.run(t, "stats"); r.code != exitOK || !strings.Contains(r.stdout, "queue    2 requests, the oldest waiting ") {
		t.Errorf("stats before any worker: %v", r)
	}
	b.h.StartWorker(t, t.Context())
	// The request is acknowledged just after its terminal event is
	// published, so the queue empties a moment after "succeeded".
	var r result
	jobstest.Eventually(t, 30*time.Second, "the queue never emptied", func() bool {
		r = b.run(t, "stats")
		return strings.Contains(r.stdout, "queue    0 requests; 0 dead letters")
	})
	if r.code != exitOK || !strings.Contains(r.stdout, "apps     2 live") || !strings.Contains(r.stdout, "budget   ") {
		t.Errorf("stats: %v", r)
	}
	if r := b.run(t, "stats", "--json"); r.code != exitOK || !strings.Contains(r.stdout, `"apps":{"live":2}`) {
		t.Errorf("stats --json: %v", r)
	}
}
