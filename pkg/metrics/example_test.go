package metrics_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel"
)

func Example() {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "v1.2.3", Revision: "abc123"})
	m.SetConcurrency(16)

	m.JobStarted()
	m.QueueWait(2 * time.Second)
	m.ObserveRequest(vercel.EndpointCreateProject, 429, 40*time.Millisecond)
	m.ObserveRequest(vercel.EndpointCreateProject, 200, 120*time.Millisecond)
	m.StepFinished("create_project", metrics.StepRetry, 50*time.Millisecond)
	m.StepFinished("create_project", metrics.StepSuccess, 3*time.Second)
	m.JobFinished(metrics.OutcomeSuccess, 1, 95*time.Second)

	families, _ := reg.Gather()
	for _, mf := range families {
		if mf.GetType().String() != "COUNTER" {
			continue
		}
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, lp := range s.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			if v := s.GetCounter().GetValue(); v > 0 {
				fmt.Printf("%s{%s} %v\n", mf.GetName(), strings.Join(labels, ","), v)
			}
		}
	}
	// Output:
	// deployq_job_attempts_total{outcome="success"} 1
	// deployq_jobs_processed_total{outcome="success"} 1
	// deployq_vercel_requests_total{code="200",endpoint="projects.create"} 1
	// deployq_vercel_requests_total{code="429",endpoint="projects.create"} 1
}

// A nil *Metrics records nothing, so code that takes one runs unchanged in
// tests and in programs that export no metrics.
func Example_nil() {
	var m *metrics.Metrics
	m.JobStarted()
	m.JobFinished(metrics.OutcomeFailure, 3, time.Minute)
	fmt.Println("ok")
	// Output: ok
}
