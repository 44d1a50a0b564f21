package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// queueMetrics describe the request backlog, as JetStream reports it.
type queueMetrics struct {
	pending    prometheus.Gauge
	ackPending prometheus.Gauge
	oldestAge  prometheus.Gauge
}

func newQueueMetrics(f promauto.Factory) queueMetrics {
	return queueMetrics{
		pending: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "queue_pending_requests",
			Help:      "Deploy requests waiting for a worker (the shared consumer's num_pending).",
		}),
		ackPending: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "queue_in_progress_requests",
			Help:      "Deploy requests delivered to a worker and not settled yet (num_ack_pending), fleet-wide.",
		}),
		oldestAge: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "queue_oldest_pending_age_seconds",
			Help:      "Age of the oldest request still in the work queue (waiting or in progress); 0 when it is empty.",
		}),
	}
}

// SetBacklog records the request backlog: waiting, in progress, and the
// age of the oldest request not yet settled.
func (m *Metrics) SetBacklog(pending, inProgress uint64, oldest time.Duration) {
	if m == nil {
		return
	}
	m.queue.pending.Set(float64(pending))
	m.queue.ackPending.Set(float64(inProgress))
	m.queue.oldestAge.Set(seconds(oldest))
}
