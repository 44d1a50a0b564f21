package metrics

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// queueMetrics describe the request backlog, as JetStream reports it.
type queueMetrics struct {
	pending    prometheus.Gauge
	ackPending prometheus.Gauge
	oldestAge  prometheus.Gauge
	// Per tenant, for the tenants with the most requests (MaxTenantSeries).
	tenantWaiting *prometheus.GaugeVec
	tenantRunning *prometheus.GaugeVec
	// decision is the fair dispatch's own cost: choosing whose request
	// goes next, without the fetch.
	decision prometheus.Histogram
}

// decisionBuckets span a dispatch decision: about a microsecond with a
// thousand tenants waiting; the top buckets would show it degrading.
var decisionBuckets = []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 1e-2}

// MaxTenantSeries caps the tenants the per-tenant backlog names: the
// ones with the most requests waiting or running; the others are summed
// under tenant="_other", so thousands of tenants do not make thousands
// of series.
const MaxTenantSeries = 50

// otherTenants labels the tenants beyond MaxTenantSeries.
const otherTenants = "_other"

func newQueueMetrics(f promauto.Factory) queueMetrics {
	return queueMetrics{
		pending: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "queue_pending_requests",
			Help:      "Deploy requests waiting for a worker (num_pending of every tenant's consumer), fleet-wide.",
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
		tenantWaiting: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "tenant_waiting_requests",
			Help:      "Deploy requests of a tenant waiting for a worker, fleet-wide (the tenants with the most requests; the rest under tenant=\"_other\").",
		}, []string{"tenant"}),
		tenantRunning: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "tenant_running_requests",
			Help:      "Deploy requests of a tenant delivered to a worker and not settled yet, fleet-wide (the tenants with the most requests; the rest under tenant=\"_other\").",
		}, []string{"tenant"}),
		decision: f.NewHistogram(histogramOpts(
			"dispatch_decision_seconds",
			"Time the worker took to choose whose request to fetch next among the tenants waiting (fair dispatch's own cost, without the fetch).",
			decisionBuckets,
		)),
	}
}

// DispatchDecision records one choice of whose request goes next.
func (m *Metrics) DispatchDecision(d time.Duration) {
	if m == nil {
		return
	}
	m.queue.decision.Observe(d.Seconds())
}

// SetTenantBacklog records each tenant's requests waiting ([0]) and
// running ([1]), replacing the previous picture: a tenant with nothing
// left has no series.
func (m *Metrics) SetTenantBacklog(tenants map[string][2]uint64) {
	if m == nil {
		return
	}
	names := slices.Collect(maps.Keys(tenants))
	slices.SortFunc(names, func(a, b string) int {
		ta, tb := tenants[a], tenants[b]
		return cmp.Or(cmp.Compare(tb[0]+tb[1], ta[0]+ta[1]), cmp.Compare(a, b))
	})
	m.queue.tenantWaiting.Reset()
	m.queue.tenantRunning.Reset()
	var other [2]uint64
	for i, t := range names {
		if i >= MaxTenantSeries {
			other[0] += tenants[t][0]
			other[1] += tenants[t][1]
			continue
		}
		m.queue.tenantWaiting.WithLabelValues(t).Set(float64(tenants[t][0]))
		m.queue.tenantRunning.WithLabelValues(t).Set(float64(tenants[t][1]))
	}
	if len(names) > MaxTenantSeries {
		m.queue.tenantWaiting.WithLabelValues(otherTenants).Set(float64(other[0]))
		m.queue.tenantRunning.WithLabelValues(otherTenants).Set(float64(other[1]))
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
