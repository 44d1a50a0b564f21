package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// How a job in wait_ready is waiting for its build (the "how" label of
// deployq_build_waiting_jobs).
const (
	// BuildWaitPoll is a job sleeping until its next status poll.
	BuildWaitPoll = "poll"
	// BuildWaitStream is a job following its deployment's event stream.
	BuildWaitStream = "stream"
	// BuildWaitCold is a job waiting while no build time is known, until a
	// job following its stream has learned one.
	BuildWaitCold = "cold"
)

// buildMetrics describe how jobs wait for their builds, and the build
// time the worker expects, which schedules the polls.
type buildMetrics struct {
	waiting   *prometheus.GaugeVec
	mean, dev prometheus.Gauge
}

func newBuildMetrics(f promauto.Factory) buildMetrics {
	b := buildMetrics{
		waiting: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "build_waiting_jobs",
			Help:      "Jobs waiting for their build, by how: sleeping until a status poll, following the deployment's event stream, or waiting for a first build time to be learned (cold).",
		}, []string{"how"}),
		mean: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "build_time_estimate_seconds",
			Help:      "The build time this worker expects (moving mean of observed builds, shared by the team's workers); the first status poll comes at this plus the deviation.",
		}),
		dev: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "build_time_deviation_seconds",
			Help:      "The mean deviation of observed build times around deployq_build_time_estimate_seconds.",
		}),
	}
	// Every way of waiting shows from the start, at 0.
	for _, how := range []string{BuildWaitPoll, BuildWaitStream, BuildWaitCold} {
		b.waiting.WithLabelValues(how)
	}
	return b
}

// BuildWaitStarted and BuildWaitEnded bracket one way of waiting of one
// job (how is BuildWaitPoll, BuildWaitStream or BuildWaitCold).
func (m *Metrics) BuildWaitStarted(how string) {
	if m == nil {
		return
	}
	m.build.waiting.WithLabelValues(how).Inc()
}

// BuildWaitEnded: see BuildWaitStarted.
func (m *Metrics) BuildWaitEnded(how string) {
	if m == nil {
		return
	}
	m.build.waiting.WithLabelValues(how).Dec()
}

// SetBuildEstimate records the build time the worker expects now.
func (m *Metrics) SetBuildEstimate(mean, dev time.Duration) {
	if m == nil {
		return
	}
	m.build.mean.Set(seconds(mean))
	m.build.dev.Set(seconds(dev))
}
