package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// The tests of waiting for a build count the simulator's requests: every
// call spent waiting is one the budget cannot give another deploy.

// waitPipeline is a pipeline over api with cfg; unlike the harness's, an
// ExpectedBuild left at zero stays unset (a cold estimate).
func waitPipeline(t *testing.T, h *jobstest.Harness, api *vercel.Client, cfg worker.PipelineConfig) *worker.Pipeline {
	t.Helper()
	cfg.IntegrationConfigID = "icfg_test"
	if cfg.PollMin == 0 {
		cfg.PollMin = 10 * time.Millisecond
	}
	if api == nil {
		api = h.API
	}
	p, err := worker.NewPipeline(api, h.Assets.Sources, h.Assets.Uploads, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// deployAll submits one request per tarball and runs them all at once
// on a worker over p until each has its terminal event (or ctx ends,
// then the worker stops and the events so far are returned); the events
// come back in the tarballs' order.
func deployAll(t *testing.T, ctx context.Context, h *jobstest.Harness, p *worker.Pipeline, prefix string, tgzs ...[]byte) []jobs.Event {
	t.Helper()
	ctx, stop := context.WithCancel(ctx)
	_, done := h.RunWorker(t, ctx, p, worker.Config{Concurrency: len(tgzs)})
	defer func() { stop(); <-done }()
	ids := make([]string, len(tgzs))
	for i, tgz := range tgzs {
		ids[i] = h.Submit(t, jobstest.Request("acme", fmt.Sprintf("%s-%d", prefix, i)), tgz).ID
	}
	got := h.WaitTerminal(t, "acme", waitLong, ids...)
	out := make([]jobs.Event, len(ids))
	for i, id := range ids {
		out[i] = got[id]
	}
	return out
}

func requireSucceeded(t *testing.T, evs []jobs.Event) {
	t.Helper()
	for i, ev := range evs {
		if ev.Type != jobs.TypeSucceeded || !strings.HasPrefix(ev.Data.URL, "https://") {
			t.Fatalf("deploy %d: %s %+v", i, ev.Short(), ev.Data)
		}
	}
}

func repeat(tgz []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = tgz
	}
	return out
}

// waitCalls are the simulator's counts of the two ways to wait.
func waitCalls(h *jobstest.Harness) (gets, streams int) {
	st := h.Sim.Stats()
	return st.Requests[vercel.EndpointGetDeployment], st.Requests[vercel.EndpointDeploymentEvents]
}

func deployCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

// A cohort of jobs started together by a pipeline that knows nothing of
// build times: one job follows its stream (one call, plus the poll that
// confirms), the others wait for it to learn the build time and then poll
// exactly once, after their own build's end. Without the scout every job
// would poll on a guess (30 s) or stream.
func TestColdCohortOneStreamThenOnePollEach(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true,
		Sim: vercelsim.Config{BuildTime: 600 * time.Millisecond, BuildJitter: 100 * time.Millisecond}})
	p := waitPipeline(t, h, nil, worker.PipelineConfig{ColdStreams: 1})
	const n = 6
	rs := deployAll(t, deployCtx(t), h, p, "cold", repeat(h.Tarball(t, nil), n)...)
	requireSucceeded(t, rs)
	gets, streams := waitCalls(h)
	if streams != 1 || gets != n {
		t.Fatalf("%d streams and %d polls for %d deploys, want 1 stream and %d polls (the scout's confirmation, one per other job)", streams, gets, n, n)
	}
	if mean, _ := p.BuildEstimate(); mean < 600*time.Millisecond || mean > 800*time.Millisecond {
		t.Errorf("estimate afterwards %s, want a build time of 600–700 ms", mean)
	}
}

// With an estimate, a build running later than both polls is followed on
// its stream rather than polled on.
func TestLateBuildIsFollowedOnItsStream(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true, Sim: vercelsim.Config{BuildTime: 1500 * time.Millisecond}})
	p := waitPipeline(t, h, nil, worker.PipelineConfig{ExpectedBuild: 100 * time.Millisecond})
	requireSucceeded(t, deployAll(t, deployCtx(t), h, p, "late", h.Tarball(t, nil)))
	gets, streams := waitCalls(h)
	if streams != 1 || gets != 3 {
		t.Fatalf("%d streams, %d polls; want the expected-end poll, the tail poll, one stream and the confirming poll", streams, gets)
	}
}

// A stream that ends before the build is not reopened: the confirming
// poll sees the build running, and polls follow at a quarter of the time
// elapsed, a number that grows with the logarithm of the wait.
func TestStreamEndingEarlyFallsBackToSpreadPolls(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true, Sim: vercelsim.Config{
		BuildTime: 1500 * time.Millisecond,
		Faults:    map[vercel.Endpoint]vercelsim.Fault{vercel.EndpointDeploymentEvents: {ErrorAfter: 1}},
	}})
	p := waitPipeline(t, h, nil, worker.PipelineConfig{ExpectedBuild: 100 * time.Millisecond})
	requireSucceeded(t, deployAll(t, deployCtx(t), h, p, "cut", h.Tarball(t, nil)))
	gets, streams := waitCalls(h)
	// From 0.15 s to 1.5 s at ×1.25 a step: about 11 polls, plus 3. Polls
	// every PollMin (10 ms) would be over a hundred.
	if streams != 1 || gets < 5 || gets > 20 {
		t.Fatalf("%d streams, %d polls; want 1 stream, then 5–20 polls", streams, gets)
	}
}

// streamGauge counts the event streams open at once on the way to the
// simulator.
type streamGauge struct {
	next       http.Handler
	open, peak atomic.Int64
}

func (g *streamGauge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/events") {
		g.next.ServeHTTP(w, r)
		return
	}
	n := g.open.Add(1)
	defer g.open.Add(-1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	g.next.ServeHTTP(w, r)
}

// Streams beyond MaxStreams are not opened: those jobs poll, and every
// deploy still ends.
func TestStreamsAreBounded(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true, Sim: vercelsim.Config{BuildTime: 1500 * time.Millisecond}})
	g := &streamGauge{next: h.Sim}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	p := waitPipeline(t, h, jobstest.NewAPI(t, srv.URL), worker.PipelineConfig{ExpectedBuild: 100 * time.Millisecond, MaxStreams: 1})
	requireSucceeded(t, deployAll(t, deployCtx(t), h, p, "bound", repeat(h.Tarball(t, nil), 4)...))
	_, streams := waitCalls(h)
	if peak := g.peak.Load(); peak != 1 || streams < 1 {
		t.Fatalf("at most %d streams open at once (%d in all), want 1", peak, streams)
	}
}

// What one worker learned reaches a worker started later through the
// DEPLOY_BUILDTIMES bucket: the newcomer polls once, after the build, and
// opens no stream.
func TestBuildEstimateIsSharedThroughTheBucket(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true, Sim: vercelsim.Config{BuildTime: 500 * time.Millisecond}})
	first := waitPipeline(t, h, nil, worker.PipelineConfig{BuildTimes: h.Assets.BuildTimes})
	requireSucceeded(t, deployAll(t, deployCtx(t), h, first, "teach", h.Tarball(t, nil)))
	learned, _ := first.BuildEstimate()

	e, err := h.Assets.BuildTimes.Get(t.Context(), "personal")
	if err != nil {
		t.Fatalf("no shared estimate for the team: %v", err)
	}
	var v struct {
		MeanMs, Samples int64
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil || v.Samples != 1 || time.Duration(v.MeanMs)*time.Millisecond != learned.Truncate(time.Millisecond) {
		t.Fatalf("shared entry %s, want 1 sample of %s", e.Value(), learned)
	}

	gets0, streams0 := waitCalls(h)
	second := waitPipeline(t, h, nil, worker.PipelineConfig{BuildTimes: h.Assets.BuildTimes})
	requireSucceeded(t, deployAll(t, deployCtx(t), h, second, "learner", h.Tarball(t, nil)))
	gets, streams := waitCalls(h)
	if gets-gets0 != 1 || streams != streams0 {
		t.Fatalf("the second worker spent %d polls and %d streams, want 1 poll and no stream", gets-gets0, streams-streams0)
	}
	if mean, _ := second.BuildEstimate(); mean < 450*time.Millisecond || mean > 600*time.Millisecond {
		t.Errorf("second worker's estimate %s, want about 500 ms", mean)
	}
}

// Cancelling ends every kind of wait at once: the scout's stream and the
// jobs waiting for it, and none of them polled meanwhile.
func TestCancelEndsColdWaits(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true, Sim: vercelsim.Config{BuildTime: time.Minute}})
	p := waitPipeline(t, h, nil, worker.PipelineConfig{ColdStreams: 1})
	ctx, stop := context.WithCancel(deployCtx(t))
	defer stop()
	h.RunWorker(t, ctx, p, worker.Config{Concurrency: 3})
	tgz := h.Tarball(t, nil)
	var ids []string
	for i := range 3 {
		ids = append(ids, h.Submit(t, jobstest.Request("acme", fmt.Sprintf("cancel-%d", i)), tgz).ID)
	}
	jobstest.Eventually(t, waitLong, "builds did not start", func() bool {
		st := h.Sim.Stats()
		if len(h.Sim.Deployments()) != 3 || st.Requests[vercel.EndpointDeploymentEvents] != 1 {
			return false
		}
		// Each job recorded its deployment: it waits for the build.
		for _, id := range ids {
			js, err := jobs.ReadState(ctx, h.Assets.Jobs, "acme", id)
			if err != nil || js == nil || js.Step != jobs.StepCreateDeployment {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		if _, err := h.Client.Cancel(ctx, "acme", id); err != nil {
			t.Fatalf("cancel %s: %v", id, err)
		}
	}
	// A minute's build: only the cancel ends these waits in time.
	for id, ev := range h.WaitTerminal(t, "acme", 10*time.Second, ids...) {
		if ev.Type != jobs.TypeCancelled || ev.Data.Step != jobs.StepWaitReady {
			t.Errorf("%s: %s at %q, want cancelled at %s", id, ev.Short(), ev.Data.Step, jobs.StepWaitReady)
		}
	}
	if gets, _ := waitCalls(h); gets != 0 {
		t.Errorf("%d polls while the estimate was cold, want none", gets)
	}
}

// A scout whose build fails teaches nothing; another waiting job takes
// over, and every other deploy ends as it should.
func TestFailedScoutHandsOver(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true, Sim: vercelsim.Config{BuildTime: 400 * time.Millisecond}})
	p := waitPipeline(t, h, nil, worker.PipelineConfig{ColdStreams: 1})
	ok := h.Tarball(t, nil)
	rs := deployAll(t, deployCtx(t), h, p, "handover", jobstest.FailingTarball(t, "boom"), ok, ok)
	if e := rs[0].Data.Error; rs[0].Type != jobs.TypeFailed || e == nil || e.Code != vercelsim.BuildFailedCode {
		t.Fatalf("failing build: %s %+v", rs[0].Short(), rs[0].Data)
	}
	requireSucceeded(t, rs[1:])
	gets, streams := waitCalls(h)
	if gets != 3 || streams < 1 || streams > 2 {
		t.Fatalf("%d polls and %d streams; want 3 polls (one per deploy) and 1 or 2 streams", gets, streams)
	}
}

// A job handed back mid-wait is resumed by the next worker on the
// schedule of its deployment's creation: its expected end has passed, so
// it polls at once (one call) instead of waiting a build time again.
func TestResumedWaitCountsFromTheDeployment(t *testing.T) {
	t.Parallel()
	const build = 3 * time.Second
	h := jobstest.Start(t, jobstest.Config{
		NoWorkers: true,
		Sim:       vercelsim.Config{BuildTime: build},
		Worker:    worker.Config{ShutdownGrace: 50 * time.Millisecond},
	})
	ctx, stop := context.WithCancel(context.Background())
	_, done := h.StartWorker(t, ctx)
	tgz := h.Tarball(t, nil)
	var ids []string
	for i := range 3 {
		ids = append(ids, h.Submit(t, jobstest.Request("acme", fmt.Sprintf("rewait%d", i)), tgz).ID)
	}
	jobstest.Eventually(t, waitLong, "deployments not all created", func() bool { return len(h.Sim.Deployments()) == len(ids) })
	stop()
	<-done
	jobstest.Eventually(t, waitLong, "builds did not end", func() bool {
		for _, d := range h.Sim.Deployments() {
			if d.ReadyState != "READY" {
				return false
			}
		}
		return true
	})
	gets0, streams0 := waitCalls(h)
	start := time.Now()
	h.StartWorker(t, context.Background())
	got := h.WaitTerminal(t, "acme", waitLong, ids...)
	took := time.Since(start)
	for _, id := range ids {
		if got[id].Type != jobs.TypeSucceeded {
			t.Fatalf("%s: %s", id, got[id].Type)
		}
	}
	gets, streams := waitCalls(h)
	if gets-gets0 != len(ids) || streams != streams0 {
		t.Errorf("resumed jobs spent %d polls and %d streams, want one poll each", gets-gets0, streams-streams0)
	}
	if took >= build {
		t.Errorf("resumed jobs took %s: their wait restarted instead of counting from the deployment", took)
	}
}

// The poll schedule learns the build time from the API's own timestamps
// (createdAt and ready of the READY deployment): after one 300 ms build,
// an expectation of 2 s moves a quarter of the way, to 1.575 s.
func TestBuildEstimateLearnsFromTheAPI(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true, Sim: vercelsim.Config{BuildTime: 300 * time.Millisecond}})
	p := waitPipeline(t, h, nil, worker.PipelineConfig{ExpectedBuild: 2 * time.Second})
	if mean, _ := p.BuildEstimate(); mean != 2*time.Second {
		t.Fatalf("initial estimate %s, want the configured 2s", mean)
	}
	requireSucceeded(t, deployAll(t, deployCtx(t), h, p, "learn", h.Tarball(t, nil)))
	// The simulator's timestamps are whole milliseconds.
	if mean, _ := p.BuildEstimate(); mean < 1574*time.Millisecond || mean > 1576*time.Millisecond {
		t.Fatalf("estimate after a 300ms build: %s, want 1.575s", mean)
	}
}

// An API that does not serve event streams (a stand-in, a proxy) fails
// no deploy: the stream is an optimisation. The pipeline tries it once,
// then waits by polling, for every job of the cohort.
func TestMissingEventStreamFallsBackToPolling(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true,
		Sim: vercelsim.Config{BuildTime: 300 * time.Millisecond, Quirks: vercelsim.Quirks{EventStream: vercelsim.StreamNotServed}}})
	p := waitPipeline(t, h, nil, worker.PipelineConfig{ColdStreams: 2})
	const n = 8
	requireSucceeded(t, deployAll(t, deployCtx(t), h, p, "nostream", repeat(h.Tarball(t, nil), n)...))
	gets, streams := waitCalls(h)
	t.Logf("%d polls, %d streams", gets, streams)
	if streams < 1 || streams > 2 {
		t.Fatalf("%d streams asked for; want the scouts' one or two, then none", streams)
	}
}

// A stream that stays open after the build ended, without the final
// state, does not hold the job: the polls made while it streams end the
// wait.
func TestStreamThatStaysOpenDoesNotHoldTheJob(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true,
		Sim: vercelsim.Config{BuildTime: 300 * time.Millisecond, Quirks: vercelsim.Quirks{EventStream: vercelsim.StreamStaysOpen}}})
	p := waitPipeline(t, h, nil, worker.PipelineConfig{ColdStreams: 1, StreamPoll: 100 * time.Millisecond})
	requireSucceeded(t, deployAll(t, deployCtx(t), h, p, "open", h.Tarball(t, nil)))
	if gets, streams := waitCalls(h); streams != 1 || gets < 1 {
		t.Fatalf("%d streams and %d polls; want one stream, ended by a poll", streams, gets)
	}
}

// The URL handed out is the public production domain, once Vercel has
// assigned it (aliasAssigned comes a moment after READY); the event also
// carries the deployment's own URL, named as such.
func TestURLIsTheProductionDomainOnceAssigned(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true,
		Sim: vercelsim.Config{BuildTime: 200 * time.Millisecond, Quirks: vercelsim.Quirks{AliasDelay: 400 * time.Millisecond}}})
	p := waitPipeline(t, h, nil, worker.PipelineConfig{ExpectedBuild: 200 * time.Millisecond})
	evs := deployAll(t, deployCtx(t), h, p, "alias", h.Tarball(t, nil))
	requireSucceeded(t, evs)
	d := evs[0].Data
	if d.URL != "https://"+d.ProjectName+".vercel.app" {
		t.Fatalf("url %q, want the production domain of %s", d.URL, d.ProjectName)
	}
	if d.DeploymentURL == "" || d.DeploymentURL == d.URL || !strings.HasPrefix(d.DeploymentURL, "https://") {
		t.Fatalf("deploymentUrl %q beside url %q", d.DeploymentURL, d.URL)
	}
}

// A BLOCKED deployment fails the job at once with a typed reason, rather
// than being polled until the job's deadline.
func TestBlockedDeploymentFails(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Sim: vercelsim.Config{BuildTime: 100 * time.Millisecond,
		Quirks: vercelsim.Quirks{BlockDeployments: true}}})
	id := h.Submit(t, jobstest.Request("acme", "blocked"), h.Tarball(t, nil)).ID
	ev := h.WaitTerminal(t, "acme", waitLong, id)[id]
	if ev.Type != jobs.TypeFailed || ev.Data.Error == nil || ev.Data.Error.Code != "DEPLOYMENT_BLOCKED" {
		t.Fatalf("blocked deployment: %s %+v", ev.Type, ev.Data.Error)
	}
}
