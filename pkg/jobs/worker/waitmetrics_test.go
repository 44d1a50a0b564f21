package worker_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The metrics say how jobs wait for their builds: while the scout of a
// cold cohort confirms its build, the others are counted as waiting cold;
// afterwards nobody is counted as waiting, and the learned build time
// shows.
func TestBuildWaitMetrics(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true,
		// Builds long enough that every job has reached its wait, cold,
		// before the scout's build ends, on a slow machine too.
		Sim: vercelsim.Config{BuildTime: 1500 * time.Millisecond, BuildJitter: 100 * time.Millisecond}})
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg, metrics.BuildInfo{})
	waiting := func(how string) float64 {
		t.Helper()
		v, err := gaugeValue(reg, "deployq_build_waiting_jobs", how)
		if err != nil {
			t.Error(err)
		}
		return v
	}

	// At the first status poll, the scout's confirmation, the gauges are
	// read on the way to the simulator.
	var once sync.Once
	var cold, stream, poll float64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v13/deployments/") {
			once.Do(func() {
				cold, stream, poll = waiting(metrics.BuildWaitCold), waiting(metrics.BuildWaitStream), waiting(metrics.BuildWaitPoll)
			})
		}
		h.Sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p := waitPipeline(t, h, jobstest.NewAPI(t, srv.URL), worker.PipelineConfig{ColdStreams: 1, Metrics: m})
	const n = 5
	requireSucceeded(t, deployAll(t, deployCtx(t), h, p, "gauged", repeat(h.Tarball(t, nil), n)...))

	if cold != n-1 || stream != 0 || poll != 0 {
		t.Fatalf("at the scout's confirming poll: cold %v, stream %v, poll %v; want %d, 0, 0", cold, stream, poll, n-1)
	}
	for _, how := range []string{metrics.BuildWaitCold, metrics.BuildWaitStream, metrics.BuildWaitPoll} {
		if v := waiting(how); v != 0 {
			t.Errorf("after every deploy ended, %v jobs still counted waiting by %s", v, how)
		}
	}
	if est, _ := gaugeValue(reg, "deployq_build_time_estimate_seconds", ""); est < 1.5 || est > 1.7 {
		t.Errorf("deployq_build_time_estimate_seconds = %v, want the 1.5–1.6 s builds", est)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", err, problems)
	}
}

// gaugeValue reads one gauge from reg: the series whose only label has
// value label, or the unlabelled one when label is "".
func gaugeValue(reg prometheus.Gatherer, name, label string) (float64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			if label == "" || (len(s.GetLabel()) == 1 && s.GetLabel()[0].GetValue() == label) {
				return s.GetGauge().GetValue(), nil
			}
		}
	}
	return 0, nil
}
