package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// latencyRun is item 4: deployq under a steady, open-loop load below its
// capacity, with builds that take time, seen from both ends of a job.
type latencyRun struct {
	// TargetRate is the arrival rate: Load × BaseJobsPerSecond unless set
	// by a flag.
	TargetRate        float64 `json:"targetJobsPerSecond"`
	Load              float64 `json:"loadFraction"`
	BaseJobsPerSecond float64 `json:"baseJobsPerSecond"`
	BuildTime         string  `json:"buildTime"`
	BuildJitter       string  `json:"buildJitter"`
	Concurrency       int     `json:"workerConcurrency"`
	WarmupSeconds     float64 `json:"warmupSeconds"`
	MeasuredSeconds   float64 `json:"measuredSeconds"`
	Submitted         int     `json:"submitted"`
	Counted           int     `json:"counted"`
	Failed            int     `json:"failed"`
	// AchievedRate is counted requests ÷ the span of their submits.
	AchievedRate float64 `json:"achievedJobsPerSecond"`

	// SubmitToFirstCall: Submit returned → the job's first API request
	// (create project) reached the simulator.
	SubmitToFirstCall latency `json:"submitReturnedToFirstApiCall"`
	// ReadyToTerminal: the deployment's READY time in the simulator → the
	// watcher received the terminal event. Split in two: the status poll
	// that saw READY, then the rest (claim step, checkpoints, events).
	ReadyToTerminal  latency `json:"readyToTerminalEvent"`
	ReadyToPoll      latency `json:"readyToPollThatSawIt"`
	PollToTerminal   latency `json:"pollToTerminalEvent"`
	SubmitToTerminal latency `json:"submitReturnedToTerminalEvent"`
	// SubmitCall is how long Submit itself took; Lateness how late each
	// Submit started against its schedule (the open loop's fidelity).
	SubmitCall latency `json:"submitCall"`
	Lateness   latency `json:"arrivalLateness"`
	// OthersCPU is the share of the machine other processes used from the
	// first arrival to the last terminal event.
	OthersCPU float64 `json:"otherProcessesCpuShare"`
}

// tracer stands in front of the simulator and notes, for each job, when
// its first API request arrived (the create-project call, which names
// the project) and when the deployment's latest status poll arrived.
type tracer struct {
	next http.Handler

	mu          sync.Mutex
	firstCreate map[string]time.Time // project name → first POST /v11/projects
	lastPoll    map[string]time.Time // deployment id → latest GET /v13/deployments/{id}
}

func newTracer(next http.Handler) *tracer {
	return &tracer{next: next, firstCreate: map[string]time.Time{}, lastPoll: map[string]time.Time{}}
}

// The paths the pipeline's client uses for those two calls.
const (
	createProjectPath = "/v11/projects"
	getDeploymentPath = "/v13/deployments/"
)

func (t *tracer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == createProjectPath:
		// The body names the project; read it and hand the simulator a
		// fresh reader over the same bytes.
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		var p struct {
			Name string `json:"name"`
		}
		if err == nil && json.Unmarshal(body, &p) == nil && p.Name != "" {
			t.mu.Lock()
			if _, seen := t.firstCreate[p.Name]; !seen {
				t.firstCreate[p.Name] = at
			}
			t.mu.Unlock()
		}
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, getDeploymentPath):
		// The pipeline stops polling once it sees READY, so the latest
		// poll is the one that saw it.
		id := strings.TrimPrefix(r.URL.Path, getDeploymentPath)
		t.mu.Lock()
		t.lastPoll[id] = at
		t.mu.Unlock()
	}
	t.next.ServeHTTP(w, r)
}

// schedule is when each request of an open-loop run was due, started and
// accepted.
type schedule struct {
	due, started, returned []time.Time
}

// runLatency measures item 4 at rate jobs per second: requests are
// submitted on a fixed schedule, whatever the system does (open loop),
// for warmup + measured; only those due after warmup are counted.
func runLatency(ctx context.Context, b *runner, base, perSecond float64) (latencyRun, error) {
	o := b.o
	r := latencyRun{
		TargetRate: perSecond, Load: o.latencyLoad, BaseJobsPerSecond: base,
		BuildTime: o.latencyBuild.String(), BuildJitter: o.latencyJitter.String(),
		WarmupSeconds: o.latencyWarmup.Seconds(), MeasuredSeconds: o.latencyDuration.Seconds(),
	}
	// A job holds its slot for the build plus a second or so of polls,
	// steps and checkpoints.
	r.Concurrency = o.latencyConcurrency
	if r.Concurrency <= 0 {
		r.Concurrency = workerSlots(perSecond, o.latencyBuild+o.latencyJitter+time.Second, 1.5, 64)
	}
	var tr *tracer
	e, err := newEnv(ctx, b.tmp, o.keep, envConfig{
		name: "latency", assets: true,
		sim: &vercelsim.Config{BuildTime: o.latencyBuild, BuildJitter: o.latencyJitter,
			Token: benchToken, TeamID: benchTeam, Seed: b.seed},
		wrap: func(h http.Handler) http.Handler { tr = newTracer(h); return tr },
		// The operator's configuration for builds of this length.
		pipeline:  worker.PipelineConfig{ExpectedBuild: o.latencyBuild},
		httpConns: r.Concurrency,
	})
	if err != nil {
		return r, err
	}
	defer e.close()

	offsets := arrivalOffsets(perSecond, o.latencyWarmup+o.latencyDuration)
	if len(offsets) == 0 {
		return r, errors.New("no arrivals: the rate or the duration is zero")
	}
	r.Submitted = len(offsets)
	f, err := watchTerminal(ctx, e.watch, len(offsets))
	if err != nil {
		return r, err
	}
	defer f.Stop()
	stop, err := e.runWorker(ctx, r.Concurrency, b.log, false)
	if err != nil {
		return r, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()

	ids, set := idSet("job", len(offsets))
	m := startMeter(e)
	sch, err := submitOnSchedule(ctx, e.client, ids, offsets, o.latencyInflight, b.tgz)
	if err != nil {
		return r, err
	}
	got, err := await(ctx, f, set, o.latencyBuild+o.latencyJitter+o.timeout)
	if err != nil {
		return r, err
	}
	r.OthersCPU = m.othersCPU()
	deployments := e.sim.Deployments()
	stopped = true
	if err := stop(); err != nil {
		return r, fmt.Errorf("worker: %w", err)
	}

	readyAt := make(map[string]time.Time, len(deployments))
	deploymentOf := make(map[string]string, len(deployments))
	for _, d := range deployments {
		if id := d.Meta["deployqRequestId"]; id != "" {
			readyAt[id], deploymentOf[id] = d.ReadyAt, d.ID
		}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var toFirst, toTerm, toPoll, pollToTerm, e2e, call, late []time.Duration
	var firstDue, lastDue time.Time
	for i, id := range ids {
		if offsets[i] < o.latencyWarmup {
			continue
		}
		r.Counted++
		if firstDue.IsZero() {
			firstDue = sch.due[i]
		}
		lastDue = sch.due[i]
		call = append(call, sch.returned[i].Sub(sch.started[i]))
		late = append(late, sch.started[i].Sub(sch.due[i]))
		ev := got[id]
		if ev.Type != jobs.TypeSucceeded {
			r.Failed++
			continue
		}
		req := request(id)
		if at, ok := tr.firstCreate[jobs.ProjectName(&req)]; ok {
			toFirst = append(toFirst, at.Sub(sch.returned[i]))
		}
		e2e = append(e2e, ev.At.Sub(sch.returned[i]))
		ready, ok := readyAt[id]
		if !ok {
			continue
		}
		toTerm = append(toTerm, ev.At.Sub(ready))
		if poll, ok := tr.lastPoll[deploymentOf[id]]; ok {
			toPoll = append(toPoll, poll.Sub(ready))
			pollToTerm = append(pollToTerm, ev.At.Sub(poll))
		}
	}
	r.AchievedRate = rate(max(r.Counted-1, 0), lastDue.Sub(firstDue))
	r.SubmitToFirstCall = latencyOf(toFirst)
	r.ReadyToTerminal = latencyOf(toTerm)
	r.ReadyToPoll = latencyOf(toPoll)
	r.PollToTerminal = latencyOf(pollToTerm)
	r.SubmitToTerminal = latencyOf(e2e)
	r.SubmitCall = latencyOf(call)
	r.Lateness = latencyOf(late)
	return r, nil
}

// submitOnSchedule submits ids[i] at start + offsets[i], each in its own
// goroutine so that a slow Submit never delays the next arrival, with at
// most inflight Submits at once (beyond that, arrivals start late, which
// the lateness figure shows).
func submitOnSchedule(ctx context.Context, c *jobs.Client, ids []string, offsets []time.Duration, inflight int, tgz []byte) (schedule, error) {
	n := len(ids)
	s := schedule{due: make([]time.Time, n), started: make([]time.Time, n), returned: make([]time.Time, n)}
	sem := make(chan struct{}, max(inflight, 1))
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now().Add(20 * time.Millisecond)
	for i := range ids {
		s.due[i] = start.Add(offsets[i])
		if err := sleepUntil(ctx, s.due[i]); err != nil {
			wg.Wait()
			return s, err
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return s, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			sctx, cancel := context.WithTimeout(ctx, setupTimeout)
			defer cancel()
			s.started[i] = time.Now()
			_, errs[i] = c.Submit(sctx, request(ids[i]), tgz)
			s.returned[i] = time.Now()
		})
	}
	wg.Wait()
	return s, errors.Join(errs...)
}

// sleepUntil waits for t, or returns at once when t has passed.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
