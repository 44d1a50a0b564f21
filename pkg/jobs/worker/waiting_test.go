package worker_test

import (
	"testing"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go/jetstream"
)

// A call held by the API budget past a moment says so in a waiting event,
// which names the step and the endpoint; the step's own event follows
// when the budget lets it go.
func TestBudgetWaitIsAnnounced(t *testing.T) {
	t.Parallel()
	gate := &gateLimiter{arrived: make(chan struct{}), open: make(chan struct{})}
	h := jobstest.Start(t, jobstest.Config{NewLimiter: func(testing.TB, jetstream.JetStream) vercel.Limiter { return gate }})
	req := jobstest.Request("acme", "held")
	req.ID = "held-1"
	h.Submit(t, req, h.Tarball(t, nil))
	var waiting []jobs.Event
	jobstest.Eventually(t, waitLong, "no waiting event while the budget held the deployment", func() bool {
		waiting = waiting[:0]
		for _, ev := range h.Events(t, "acme", "held-1") {
			if ev.Type == jobs.TypeWaiting {
				waiting = append(waiting, ev)
			}
		}
		return len(waiting) > 0
	})
	if w := waiting[0].Data; w.Step != jobs.StepCreateDeployment || w.Waiting != jobs.WaitingBudget || w.Endpoint != string(vercel.EndpointCreateDeployment) {
		t.Errorf("waiting event %+v", w)
	}
	close(gate.open)
	if ev := h.WaitTerminal(t, "acme", waitLong, "held-1")["held-1"]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("after the wait: %s", ev.Type)
	}
	// Exactly one: a wait is announced once.
	n := 0
	for _, ev := range h.Events(t, "acme", "held-1") {
		if ev.Type == jobs.TypeWaiting {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d waiting events, want 1", n)
	}
}
