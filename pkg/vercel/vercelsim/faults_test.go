package vercelsim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func TestFaultBeforeCreatesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{Faults: map[vercel.Endpoint]vercelsim.Fault{
		vercel.EndpointCreateProject: {ErrorBefore: 1},
	}})
	for range 10 {
		r := b.do(t, "POST", "/v11/projects", map[string]any{"name": "never"})
		if r.status != 500 && r.status != 503 {
			t.Fatalf("status %d, want 500 or 503", r.status)
		}
		if c := r.errorCode(t); c != "internal_server_error" && c != "service_unavailable" {
			t.Errorf("code %q", c)
		}
	}
	if _, ok := b.sim.Project("never"); ok {
		t.Error("a fault before the side effect created the project")
	}
	st := b.sim.Stats()
	if st.Faults[vercel.EndpointCreateProject].ErrorBefore != 10 || st.ProjectsCreated["never"] != 0 {
		t.Errorf("Faults %+v ProjectsCreated %v", st.Faults, st.ProjectsCreated)
	}
}

func TestFaultAfterCreatesAndFails(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{Faults: map[vercel.Endpoint]vercelsim.Fault{
		vercel.EndpointCreateProject: {ErrorAfter: 1},
	}})
	statuses := map[int]bool{}
	for i := range 10 {
		r := b.do(t, "POST", "/v11/projects", map[string]any{"name": "made-" + string(rune('a'+i))})
		statuses[r.status] = true
		if r.status != 500 && r.status != 502 {
			t.Fatalf("status %d, want 500 or 502", r.status)
		}
	}
	if !statuses[500] || !statuses[502] {
		t.Errorf("statuses %v: want both 500 and 502 over 10 tries", statuses)
	}
	if n := len(b.sim.Projects()); n != 10 {
		t.Errorf("%d projects, want 10: the side effect happens before the 5xx", n)
	}
	// A failing request (409) is not turned into a 5xx: there was no side
	// effect to hide.
	r := b.do(t, "POST", "/v11/projects", map[string]any{"name": "made-a"})
	want(t, r, 409)

	b.sim.SetFault(vercel.EndpointCreateProject, vercelsim.Fault{})
	want(t, b.do(t, "POST", "/v11/projects", map[string]any{"name": "fine"}), 200)
	if st := b.sim.Stats(); st.Faults[vercel.EndpointCreateProject].ErrorAfter != 10 || st.Succeeded[vercel.EndpointCreateProject] != 1 {
		t.Errorf("Faults %+v Succeeded %v", st.Faults, st.Succeeded)
	}
}

func TestHangEndsWithTheRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{Faults: map[vercel.Endpoint]vercelsim.Fault{
		vercel.EndpointCreateProject: {Hang: 1},
		vercel.EndpointGetProject:    {HangAfter: 1},
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req := b.request(t, "POST", "/v11/projects", map[string]any{"name": "hung"})
	_, err := b.srv.Client().Do(req.WithContext(ctx))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
	// The handler returns once the client is gone: no goroutine outlives
	// its request.
	waitFor(t, "the hung handler to return", func() bool {
		return b.sim.Stats().Abandoned[vercel.EndpointCreateProject] == 1
	})
	if _, ok := b.sim.Project("hung"); ok {
		t.Error("a hang before the side effect created the project")
	}
	if n := b.sim.Stats().Faults[vercel.EndpointCreateProject].Hang; n != 1 {
		t.Errorf("Hang count %d", n)
	}
}

func TestHangAfterLosesTheAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{Faults: map[vercel.Endpoint]vercelsim.Fault{
		vercel.EndpointCreateProject: {HangAfter: 1},
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req := b.request(t, "POST", "/v11/projects", map[string]any{"name": "lost-answer"})
	if _, err := b.srv.Client().Do(req.WithContext(ctx)); err == nil {
		t.Fatal("a HangAfter answered")
	}
	waitFor(t, "the hung handler to return", func() bool {
		return b.sim.Stats().Abandoned[vercel.EndpointCreateProject] == 1
	})
	if _, ok := b.sim.Project("lost-answer"); !ok {
		t.Error("HangAfter did not create the project")
	}
}

func TestCloseReleasesHangs(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{Faults: map[vercel.Endpoint]vercelsim.Fault{
		vercel.EndpointGetProject: {Hang: 1},
	}})
	done := make(chan error, 1)
	go func() {
		res, err := b.srv.Client().Do(b.request(t, "GET", "/v9/projects/x", nil))
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	waitFor(t, "the request to hang", func() bool {
		return b.sim.Stats().Faults[vercel.EndpointGetProject].Hang == 1
	})
	b.sim.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a request released by Close got an answer; want a dropped connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the hung request")
	}
	// Later hangs end at once.
	if _, err := b.srv.Client().Do(b.request(t, "GET", "/v9/projects/x", nil)); err == nil {
		t.Error("a hang after Close answered")
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{
		Latency: 20 * time.Millisecond,
		Faults:  map[vercel.Endpoint]vercelsim.Fault{vercel.EndpointGetProject: {Latency: 30 * time.Millisecond}},
	})
	start := time.Now()
	want(t, b.do(t, "GET", "/v9/projects/x", nil), 404)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answer after %v, want at least 50ms", d)
	}
	// A client that gives up during the latency gets nothing, and the
	// handler stops waiting. It gives up once the handler has the request
	// (counted on arrival): a deadline alone could pass before the request
	// left a loaded machine, and then no handler would have anything to
	// give up. The latency is long enough that only the client's leaving
	// ends it.
	b = setup(t, vercelsim.Config{Latency: time.Minute})
	before := b.sim.Stats().Requests[vercel.EndpointGetProject]
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	answered := make(chan error, 1)
	go func() {
		_, err := b.srv.Client().Do(b.request(t, "GET", "/v9/projects/x", nil).WithContext(ctx))
		answered <- err
	}()
	waitFor(t, "the request to arrive", func() bool {
		return b.sim.Stats().Requests[vercel.EndpointGetProject] > before
	})
	cancel()
	if err := <-answered; err == nil {
		t.Error("answered after the client gave up")
	}
	waitFor(t, "the handler to give up", func() bool {
		return b.sim.Stats().Abandoned[vercel.EndpointGetProject] == 1
	})
}

func TestFaultRates(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{Seed: 42, Faults: map[vercel.Endpoint]vercelsim.Fault{
		vercel.EndpointGetProject: {ErrorBefore: 0.2, ErrorAfter: 0.2},
	}})
	b.createProject(t, "rates")
	const n = 500
	for range n {
		b.do(t, "GET", "/v9/projects/rates", nil)
	}
	fc := b.sim.Stats().Faults[vercel.EndpointGetProject]
	for name, got := range map[string]int{"ErrorBefore": fc.ErrorBefore, "ErrorAfter": fc.ErrorAfter} {
		if got < n/10 || got > 3*n/10 {
			t.Errorf("%s fired %d times in %d, want about %d", name, got, n, n/5)
		}
	}
}

func TestInvalidConfigPanics(t *testing.T) {
	t.Parallel()
	for _, cfg := range []vercelsim.Config{
		{Faults: map[vercel.Endpoint]vercelsim.Fault{vercel.EndpointGetProject: {ErrorBefore: 0.7, Hang: 0.7}}},
		{Faults: map[vercel.Endpoint]vercelsim.Fault{"nope": {ErrorBefore: 0.1}}},
		{RateLimits: map[vercel.Endpoint]vercelsim.Limit{vercel.EndpointGetProject: {Requests: 0, Window: time.Second}}},
		{ConcurrentBuilds: -1},
	} {
		if cfg.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", cfg)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", cfg)
				}
			}()
			vercelsim.New(cfg)
		}()
	}
}
