package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/deployq/deployq/pkg/vercel"
)

// *Metrics is the hook the Vercel client reports each HTTP attempt to.
var _ vercel.RequestObserver = (*Metrics)(nil)

type bundle struct {
	reg *prometheus.Registry
	m   *Metrics
}

func setup(t *testing.T) bundle {
	t.Helper()
	reg := prometheus.NewRegistry()
	return bundle{reg: reg, m: New(reg, BuildInfo{Version: "v1.2.3", Revision: "abc123"})}
}

func TestLint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Touch every vector so the linter sees each family with samples.
	b.m.JobStarted()
	b.m.JobFinished(OutcomeSuccess, 1, time.Second)
	b.m.QueueWait(time.Second)
	b.m.StepFinished("create_project", StepSuccess, time.Second)
	b.m.Redelivered()
	b.m.DeadLettered("max_deliveries")
	b.m.ObserveRequest(vercel.EndpointCreateProject, 200, time.Millisecond)
	b.m.SetConcurrency(4)
	b.m.SetReady(true)
	b.m.SetCredentialsOK(true)

	problems, err := testutil.GatherAndLint(b.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	families, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		name := mf.GetName()
		if !strings.HasPrefix(name, "deployq_") {
			t.Errorf("%s: missing deployq_ prefix", name)
		}
		if isCounter := mf.GetType().String() == "COUNTER"; isCounter != strings.HasSuffix(name, "_total") {
			t.Errorf("%s: a %s; _total belongs on counters and only on them", name, mf.GetType())
		}
	}
}

func TestJobFinished(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := b.m

	before := float64(time.Now().Unix())
	m.JobStarted()
	m.JobStarted()
	m.JobStarted()
	if got := testutil.ToFloat64(m.jobsInFlight); got != 3 {
		t.Fatalf("in flight = %v, want 3", got)
	}
	m.JobFinished(OutcomeSuccess, 2, 90*time.Second)
	m.JobFinished(OutcomeFailure, 5, 10*time.Minute)
	m.JobFinished("exploded: id prj_123", 1, time.Second)

	if got := testutil.ToFloat64(m.jobsInFlight); got != 0 {
		t.Errorf("in flight = %v, want 0", got)
	}
	for outcome, want := range map[string]float64{OutcomeSuccess: 1, OutcomeFailure: 1, OutcomeOther: 1, OutcomeRejected: 0} {
		if got := testutil.ToFloat64(m.jobsProcessed.WithLabelValues(outcome)); got != want {
			t.Errorf("processed{%s} = %v, want %v", outcome, got, want)
		}
	}
	if got := testutil.ToFloat64(m.jobAttempts.WithLabelValues(OutcomeFailure)); got != 5 {
		t.Errorf("attempts{failure} = %v, want 5", got)
	}
	if n := testutil.CollectAndCount(m.jobDuration); n != 3 {
		t.Errorf("duration series = %d, want 3", n)
	}
	last := testutil.ToFloat64(m.lastJobCompleted)
	if last < before || last > float64(time.Now().Unix()+1) {
		t.Errorf("last completed = %v, want about now (%v)", last, before)
	}
}

func TestLastCompletedOnlyOnSuccess(t *testing.T) {
	t.Parallel()
	m := setup(t).m
	for _, o := range []string{OutcomeFailure, OutcomeRejected, OutcomeCancelled, OutcomeDeadLetter} {
		m.JobStarted()
		m.JobFinished(o, 1, time.Second)
	}
	if got := testutil.ToFloat64(m.lastJobCompleted); got != 0 {
		t.Errorf("last completed = %v after failures only, want 0", got)
	}
}

func TestNonPositiveInputs(t *testing.T) {
	t.Parallel()
	m := setup(t).m
	m.JobStarted()
	// Neither a negative attempt count nor a negative duration may panic
	// or move a counter backwards.
	m.JobFinished(OutcomeSuccess, -1, -time.Second)
	m.QueueWait(-time.Minute)
	m.SetConcurrency(-3)
	if got := testutil.ToFloat64(m.jobAttempts.WithLabelValues(OutcomeSuccess)); got != 0 {
		t.Errorf("attempts = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.concurrency); got != 0 {
		t.Errorf("concurrency = %v, want 0", got)
	}
}

func TestObserveRequest(t *testing.T) {
	t.Parallel()
	m := setup(t).m
	m.ObserveRequest(vercel.EndpointCreateDeployment, 429, 20*time.Millisecond)
	m.ObserveRequest(vercel.EndpointCreateDeployment, 429, 20*time.Millisecond)
	m.ObserveRequest(vercel.EndpointGetDeployment, 0, 30*time.Second)
	m.ObserveRequest(vercel.Endpoint("/v9/projects/prj_abc"), 200, time.Millisecond)
	m.ObserveRequest(vercel.EndpointGetProject, 1234, time.Millisecond)

	tests := []struct {
		endpoint, code string
		want           float64
	}{
		{string(vercel.EndpointCreateDeployment), "429", 2},
		{string(vercel.EndpointGetDeployment), "network", 1},
		{"other", "200", 1},
		{string(vercel.EndpointGetProject), "other", 1},
	}
	for _, tt := range tests {
		if got := testutil.ToFloat64(m.vercelRequests.WithLabelValues(tt.endpoint, tt.code)); got != tt.want {
			t.Errorf("requests{%s,%s} = %v, want %v", tt.endpoint, tt.code, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(m.vercelRequests); n != len(tests) {
		t.Errorf("request series = %d, want %d", n, len(tests))
	}
	if n := testutil.CollectAndCount(m.vercelRequestDuration); n != 4 {
		t.Errorf("duration series = %d, want 4", n)
	}
}

func TestLabelsBounded(t *testing.T) {
	t.Parallel()
	m := setup(t).m
	for i := range 1000 {
		m.StepFinished(fmt.Sprintf("step_%d", i), fmt.Sprintf("outcome %d", i), time.Second)
		m.DeadLettered(fmt.Sprintf("reason_%d", i))
		m.ObserveRequest(vercel.Endpoint(fmt.Sprintf("ep_%d", i)), 200+i%400, time.Millisecond)
		m.JobStarted()
		m.JobFinished(fmt.Sprintf("outcome_%d", i), 1, time.Second)
	}
	// Steps: maxSteps named ones plus "other"; outcomes all map to "other".
	if n := testutil.CollectAndCount(m.stepDuration); n != maxSteps+1 {
		t.Errorf("step series = %d, want %d", n, maxSteps+1)
	}
	if n := testutil.CollectAndCount(m.deadLettered); n != maxReasons+1 {
		t.Errorf("dead-letter series = %d, want %d", n, maxReasons+1)
	}
	// Endpoint "other" times the 400 codes from 200 to 599.
	if n := testutil.CollectAndCount(m.vercelRequests); n != 400 {
		t.Errorf("request series = %d, want 400", n)
	}
	if n := testutil.CollectAndCount(m.jobsProcessed); n != len(outcomes)+1 {
		t.Errorf("processed series = %d, want %d", n, len(outcomes)+1)
	}
}

func TestLabelValue(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"create_project", "create_project"},
		{"wait.ready-2", "wait.ready-2"},
		{"", "other"},
		{"CreateProject", "other"},
		{"2fa", "other"},
		{"failed: 500 Internal Server Error", "other"},
		{strings.Repeat("a", maxLabelBytes+1), "other"},
	}
	for _, tt := range tests {
		s := newLabelSet(4)
		if got := s.value(tt.in); got != tt.want {
			t.Errorf("value(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStepFinished(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.m.StepFinished("wait_ready", StepRetry, 2*time.Minute)
	b.m.StepFinished("wait_ready", StepRetry, time.Minute)
	b.m.StepFinished("wait_ready", StepSuccess, 3*time.Minute)
	b.m.StepFinished("wait_ready", "timeout", time.Second)
	for o, want := range map[string]uint64{StepRetry: 2, StepSuccess: 1, OutcomeOther: 1, StepFailure: 0} {
		got := sampleCount(t, b.reg, "deployq_pipeline_step_duration_seconds", map[string]string{"step": "wait_ready", "outcome": o})
		if got != want {
			t.Errorf("observations{wait_ready,%s} = %d, want %d", o, got, want)
		}
	}
}

// sampleCount returns the observation count of the histogram series with
// exactly these labels, or 0 when there is none.
func sampleCount(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			return m.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

func TestGauges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := b.m
	m.SetConcurrency(16)
	m.SetReady(true)
	m.SetCredentialsOK(true)
	m.SetCredentialsOK(false)
	m.Redelivered()
	m.Redelivered()
	m.QueueWait(250 * time.Millisecond)

	if got := testutil.ToFloat64(m.concurrency); got != 16 {
		t.Errorf("concurrency = %v, want 16", got)
	}
	if got := testutil.ToFloat64(m.ready); got != 1 {
		t.Errorf("ready = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.credentialsOK); got != 0 {
		t.Errorf("credentials ok = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.redeliveries); got != 2 {
		t.Errorf("redeliveries = %v, want 2", got)
	}
	if n := sampleCount(t, b.reg, "deployq_job_queue_wait_seconds", nil); n != 1 {
		t.Errorf("queue wait observations = %d, want 1", n)
	}
}

func TestBuildInfo(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	New(reg, BuildInfo{Version: "v1.2.3"})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, mf := range families {
		if mf.GetName() != "deployq_build_info" {
			continue
		}
		found = true
		labels := map[string]string{}
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		if labels["version"] != "v1.2.3" || labels["revision"] != "unknown" || !strings.HasPrefix(labels["goversion"], "go") {
			t.Errorf("labels = %v", labels)
		}
		if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 1 {
			t.Errorf("value = %v, want 1", v)
		}
	}
	if !found {
		t.Error("deployq_build_info not registered")
	}
}

func TestNilIsNoOp(t *testing.T) {
	t.Parallel()
	var m *Metrics
	m.JobStarted()
	m.JobFinished(OutcomeSuccess, 1, time.Second)
	m.QueueWait(time.Second)
	m.StepFinished("create_project", StepSuccess, time.Second)
	m.SetConcurrency(1)
	m.Redelivered()
	m.DeadLettered("max_deliveries")
	m.ObserveRequest(vercel.EndpointCreateProject, 200, time.Second)
	m.SetReady(true)
	m.SetCredentialsOK(true)
}

func TestNilRegistry(t *testing.T) {
	t.Parallel()
	m := New(nil, BuildInfo{})
	m.JobStarted()
	if got := testutil.ToFloat64(m.jobsInFlight); got != 1 {
		t.Errorf("in flight = %v, want 1", got)
	}
}

func TestDoubleRegistrationPanics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	New(reg, BuildInfo{})
	defer func() {
		if recover() == nil {
			t.Error("second New on one registry did not panic")
		}
	}()
	New(reg, BuildInfo{})
}

// The counters the alerts take increase() of exist at zero before their
// first event, so that event counts.
func TestCountersStartAtZero(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.m.DeclareDeadLetterReasons("rejected", "failed", "max_deliveries")
	eps := len(vercel.Endpoints())
	for _, c := range []struct {
		name string
		want int
	}{
		{"deployq_jobs_processed_total", len(outcomes)},
		{"deployq_job_attempts_total", len(outcomes)},
		{"deployq_vercel_rate_limited_total", 2 * eps},
		{"deployq_ratelimit_pause_capped_total", eps},
		{"deployq_jobs_dead_lettered_total", 3},
	} {
		if got := testutil.CollectAndCount(b.reg, c.name); got != c.want {
			t.Errorf("%s: %d series before any event, want %d", c.name, got, c.want)
		}
	}
	if got := testutil.ToFloat64(b.m.budget.limited.WithLabelValues(string(vercel.EndpointCreateDeployment), "402")); got != 0 {
		t.Errorf("402 counter starts at %v", got)
	}
	b.m.DeadLettered("failed")
	if got := testutil.ToFloat64(b.m.deadLettered.WithLabelValues("failed")); got != 1 {
		t.Errorf("failed dead letters = %v after one", got)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reset := time.Unix(1_900_000_000, 500_000_000)
	b.m.RateLimitRemaining(vercel.EndpointCreateDeployment, 7, reset)
	b.m.RateLimitRemaining(vercel.EndpointCreateDeployment, 6, time.Time{}) // no reset reported: kept
	ep := string(vercel.EndpointCreateDeployment)
	if got := testutil.ToFloat64(b.m.budget.remaining.WithLabelValues(ep)); got != 6 {
		t.Errorf("remaining %v, want 6", got)
	}
	if got := testutil.ToFloat64(b.m.budget.reset.WithLabelValues(ep)); got != 1_900_000_000.5 {
		t.Errorf("reset %v, want 1900000000.5", got)
	}
}
