package vercel_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// The tests of FollowDeploymentEvents run the real client against the
// simulator over loopback HTTP, with a fake clock driving the builds.

const (
	simToken = "tok_Str3amS3cret-42"
	simTeam  = "team_events"
)

// simClock is a clock a test moves by hand.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *simClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// limitLog is a Limiter that records what it was told.
type limitLog struct {
	mu       sync.Mutex
	waits    int
	statuses []int
	errs     []error
}

func (l *limitLog) Wait(context.Context, vercel.Endpoint) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waits++
	return nil
}

func (l *limitLog) Observe(_ vercel.Endpoint, status int, _ vercel.RateLimit, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses = append(l.statuses, status)
	l.errs = append(l.errs, err)
}

type eventsBundle struct {
	sim    *vercelsim.Server
	clock  *simClock
	client *vercel.Client
	limits *limitLog
	url    string // the simulator's
}

const simBuild = 10 * time.Second

func setupEvents(t *testing.T, cfg vercelsim.Config, opts ...vercel.Option) *eventsBundle {
	t.Helper()
	clock := &simClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	cfg.Clock, cfg.Token, cfg.TeamID, cfg.Seed = clock.Now, simToken, simTeam, 1
	if cfg.BuildTime == 0 {
		cfg.BuildTime = simBuild
	}
	sim := vercelsim.New(cfg)
	srv := httptest.NewServer(sim) // 127.0.0.1
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	limits := &limitLog{}
	c, err := vercel.New(append([]vercel.Option{
		vercel.WithBaseURL(srv.URL), vercel.WithToken(simToken), vercel.WithTeamID(simTeam),
		vercel.WithRequestTimeout(5 * time.Second), vercel.WithLimiter(limits),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return &eventsBundle{sim: sim, clock: clock, client: c, limits: limits, url: srv.URL}
}

// deploy creates a project and a deployment of a tarball with files.
func (b *eventsBundle) deploy(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	ctx := t.Context()
	if _, _, err := b.client.CreateProject(ctx, vercel.CreateProjectRequest{Name: name, Framework: "nextjs"}); err != nil {
		t.Fatal(err)
	}
	tgz := vercelsim.Tarball(files)
	sha := vercel.SHA1Hex(tgz)
	if _, err := b.client.UploadFile(ctx, sha, tgz); err != nil {
		t.Fatal(err)
	}
	d, _, err := b.client.CreateDeployment(ctx, vercel.CreateDeploymentRequest{
		Name: name, Project: name, Target: "production",
		Files:           []vercel.DeploymentFile{{File: ".vercel/source.tgz", SHA: sha, Size: int64(len(tgz))}},
		ProjectSettings: &vercel.ProjectSettings{Framework: "nextjs"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// follow runs FollowDeploymentEvents in the background; its events arrive
// on the returned channel, its result on the other.
type following struct {
	events chan vercel.DeploymentEvent
	done   chan error
}

func (b *eventsBundle) follow(ctx context.Context, id string) *following {
	f := &following{events: make(chan vercel.DeploymentEvent, 64), done: make(chan error, 1)}
	go func() {
		_, err := b.client.FollowDeploymentEvents(ctx, id, func(e vercel.DeploymentEvent) bool {
			f.events <- e
			return false
		})
		close(f.events)
		f.done <- err
	}()
	return f
}

// next waits for the next event; ok is false once the stream ended.
func (f *following) next(t *testing.T) (vercel.DeploymentEvent, bool) {
	t.Helper()
	select {
	case e, ok := <-f.events:
		return e, ok
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return vercel.DeploymentEvent{}, false
}

// rest drains the events left and returns them with the call's result.
func (f *following) rest(t *testing.T) ([]vercel.DeploymentEvent, error) {
	t.Helper()
	var evs []vercel.DeploymentEvent
	for {
		e, ok := f.next(t)
		if !ok {
			break
		}
		evs = append(evs, e)
	}
	select {
	case err := <-f.done:
		return evs, err
	case <-time.After(10 * time.Second):
		t.Fatal("FollowDeploymentEvents did not return")
	}
	return nil, nil
}

func TestFollowDeploymentEventsUntilReady(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, vercelsim.Config{})
	id := b.deploy(t, "stream-ok", map[string]string{"index.html": "ok"})

	f := b.follow(t.Context(), id)
	// The build starts at once: its first line comes while it runs.
	first, ok := f.next(t)
	if !ok || first.Type != vercel.EventStdout || first.DeploymentID != id || first.TerminalState() != "" {
		t.Fatalf("first event %+v (stream open: %v), want a stdout line of %s", first, ok, id)
	}
	b.clock.Advance(simBuild)
	evs, err := f.rest(t)
	if err != nil {
		t.Fatalf("FollowDeploymentEvents: %v", err)
	}
	if len(evs) == 0 {
		t.Fatal("no event after the build ended")
	}
	last := evs[len(evs)-1]
	if last.Type != vercel.EventDeploymentState || last.TerminalState() != vercel.StateReady || last.Info.ReadyState != vercel.StateReady {
		t.Fatalf("last event %+v, want deployment-state READY", last)
	}
	if want := b.clock.Now().UnixMilli(); last.Created != want || last.Date != want {
		t.Errorf("final event at created %d, date %d; want %d (the build's end)", last.Created, last.Date, want)
	}
	for _, e := range append([]vercel.DeploymentEvent{first}, evs...) {
		if e.ID == "" || e.Serial == "" || e.Info.Name == "" {
			t.Errorf("event without id, serial or info: %+v", e)
		}
	}
	st := b.sim.Stats()
	if st.Requests[vercel.EndpointDeploymentEvents] != 1 || st.Succeeded[vercel.EndpointDeploymentEvents] != 1 {
		t.Errorf("simulator counted %d event requests, %d succeeded; want 1, 1",
			st.Requests[vercel.EndpointDeploymentEvents], st.Succeeded[vercel.EndpointDeploymentEvents])
	}
}

func TestFollowDeploymentEventsBuildError(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, vercelsim.Config{})
	id := b.deploy(t, "stream-fail", map[string]string{vercelsim.FailBuildPath: "type error in page.tsx"})
	b.clock.Advance(simBuild) // over before the stream opens: it replays and ends
	evs, err := b.follow(t.Context(), id).rest(t)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bool
	for _, e := range evs {
		stderr = stderr || (e.Type == vercel.EventStderr && strings.Contains(e.Text, "type error in page.tsx"))
	}
	last := evs[len(evs)-1]
	if !stderr || last.TerminalState() != vercel.StateError {
		t.Fatalf("events %+v: want the error on stderr, then deployment-state ERROR", evs)
	}
}

// A stream that ends before the build does returns nil: the caller sees
// that no final state came.
func TestFollowDeploymentEventsEndingEarly(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, vercelsim.Config{Faults: map[vercel.Endpoint]vercelsim.Fault{
		vercel.EndpointDeploymentEvents: {ErrorAfter: 1},
	}})
	id := b.deploy(t, "stream-cut", map[string]string{"index.html": "ok"})
	b.clock.Advance(simBuild / 2)
	evs, err := b.follow(t.Context(), id).rest(t)
	if err != nil {
		t.Fatalf("a stream that ended cleanly gave %v", err)
	}
	if len(evs) == 0 {
		t.Fatal("no event before the end")
	}
	for _, e := range evs {
		if e.TerminalState() != "" {
			t.Fatalf("a stream cut mid-build announced %s", e.TerminalState())
		}
	}
	if got := b.sim.Stats().Faults[vercel.EndpointDeploymentEvents].ErrorAfter; got != 1 {
		t.Errorf("ErrorAfter faults = %d, want 1", got)
	}
}

// A build that goes quiet ends the stream after the idle timeout, however
// long the per-request timeout, with a transient timeout error.
func TestFollowDeploymentEventsIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	b := setupEvents(t, vercelsim.Config{}, vercel.WithStreamIdleTimeout(idle), vercel.WithRequestTimeout(time.Minute))
	id := b.deploy(t, "stream-quiet", map[string]string{"index.html": "ok"})
	start := time.Now()
	evs, err := b.follow(t.Context(), id).rest(t) // the clock stands still: the build says nothing more
	if len(evs) != 1 {
		t.Errorf("%d events before the silence, want the first line only", len(evs))
	}
	var ne *vercel.NetworkError
	var idleErr *vercel.StreamIdleError
	if !errors.As(err, &ne) || !errors.As(err, &idleErr) || idleErr.Idle != idle {
		t.Fatalf("err = %v, want a *NetworkError wrapping a *StreamIdleError of %s", err, idle)
	}
	if d := vercel.Classify(err); d.Class != vercel.Transient || d.Reason != vercel.ReasonTimeout {
		t.Errorf("Classify = %+v, want transient timeout", d)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("the idle stream ended after %s", waited)
	}
	if strings.Contains(err.Error(), simToken) {
		t.Errorf("error shows the token: %v", err)
	}
}

func TestFollowDeploymentEventsContextCancel(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, vercelsim.Config{})
	id := b.deploy(t, "stream-cancel", map[string]string{"index.html": "ok"})
	ctx, cancel := context.WithCancel(t.Context())
	f := b.follow(ctx, id)
	if _, ok := f.next(t); !ok {
		t.Fatal("the stream ended before the first event")
	}
	cancel()
	_, err := f.rest(t)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := vercel.Classify(err); d.Reason != vercel.ReasonCancelled {
		t.Errorf("Classify = %+v, want reason cancelled", d)
	}
}

// A 429 on the stream is an ordinary *RateLimitError, and the limiter
// hears it, as for every other call.
func TestFollowDeploymentEventsRateLimited(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, vercelsim.Config{RateLimits: map[vercel.Endpoint]vercelsim.Limit{
		vercel.EndpointDeploymentEvents: {Requests: 1, Window: time.Minute},
	}})
	id := b.deploy(t, "stream-limited", map[string]string{"index.html": "ok"})
	b.clock.Advance(simBuild)
	if _, err := b.follow(t.Context(), id).rest(t); err != nil {
		t.Fatalf("first stream: %v", err)
	}
	resp, err := b.client.FollowDeploymentEvents(t.Context(), id, func(vercel.DeploymentEvent) bool {
		t.Error("an event arrived on a refused stream")
		return true
	})
	var rl *vercel.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Minute || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("err = %v, want a *RateLimitError with Retry-After 1m", err)
	}
	if strings.Contains(err.Error(), simToken) {
		t.Errorf("error shows the token: %v", err)
	}
	b.limits.mu.Lock()
	defer b.limits.mu.Unlock()
	n := len(b.limits.statuses)
	if n < 2 || b.limits.statuses[n-1] != 429 || !errors.As(b.limits.errs[n-1], &rl) || b.limits.statuses[n-2] != 200 {
		t.Errorf("limiter observed %v, want …, 200, 429 with the *RateLimitError", b.limits.statuses)
	}
	if b.limits.waits != n {
		t.Errorf("%d waits for %d observations", b.limits.waits, n)
	}
}
