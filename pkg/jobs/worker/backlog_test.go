package worker_test

import (
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/prometheus/client_golang/prometheus"
)

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// The backlog metrics show what waits, what runs, and how old the oldest
// unsettled request is.
func TestBacklogMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := jobstest.Start(t, jobstest.Config{
		NoWorkers: true,
		Sim:       vercelsim.Config{BuildTime: time.Minute},
		Worker: worker.Config{Concurrency: 1, BacklogInterval: 50 * time.Millisecond,
			Metrics: metrics.New(reg, metrics.BuildInfo{})},
	})
	tgz := h.Tarball(t, nil)
	for range 3 {
		h.Submit(t, jobstest.Request("acme", "backlog"), tgz)
	}
	h.StartWorker(t, t.Context())
	jobstest.Eventually(t, waitLong, "backlog never reported as 2 waiting, 1 in progress", func() bool {
		return gauge(t, reg, "deployq_queue_pending_requests") == 2 &&
			gauge(t, reg, "deployq_queue_in_progress_requests") == 1 &&
			gauge(t, reg, "deployq_queue_oldest_pending_age_seconds") > 0
	})
}
