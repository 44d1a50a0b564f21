package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// quotaMetrics describe the tenants' quotas (deploys per day, say). Only
// tenants an operator gave a quota have series, so their number is the
// configuration's, not the traffic's.
type quotaMetrics struct {
	used     *prometheus.GaugeVec
	limit    *prometheus.GaugeVec
	held     *prometheus.GaugeVec
	rejected *prometheus.CounterVec
}

func newQuotaMetrics(f promauto.Factory) quotaMetrics {
	return quotaMetrics{
		used: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "tenant_quota_used_deploys",
			Help:      "Deploys the fleet admitted for the tenant in the quota's window up to now, as of this process's last admission.",
		}, []string{"tenant", "window"}),
		limit: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "tenant_quota_limit_deploys",
			Help:      "The tenant's quota: deploys allowed in the window.",
		}, []string{"tenant", "window"}),
		held: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "tenant_quota_held_requests",
			Help:      "Requests this process holds until their tenant's spent quota allows them (the next of each tenant's; the rest wait in the stream).",
		}, []string{"tenant"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "tenant_quota_rejected_total",
			Help:      "Requests rejected because their tenant's quota was spent and they asked for rejection (overQuota: reject).",
		}, []string{"tenant"}),
	}
}

// QuotaLimit records a tenant's quota for one window.
func (m *Metrics) QuotaLimit(tenant, window string, deploys int) {
	if m == nil {
		return
	}
	m.quota.limit.WithLabelValues(tenant, window).Set(float64(deploys))
}

// QuotaUsed records the deploys a tenant's quota window holds.
func (m *Metrics) QuotaUsed(tenant, window string, deploys int) {
	if m == nil {
		return
	}
	m.quota.used.WithLabelValues(tenant, window).Set(float64(deploys))
}

// QuotaHeld counts a request held (+1) or let go (-1) for its tenant's
// quota.
func (m *Metrics) QuotaHeld(tenant string, delta int) {
	if m == nil {
		return
	}
	m.quota.held.WithLabelValues(tenant).Add(float64(delta))
}

// QuotaRejected counts a request rejected for its tenant's spent quota.
func (m *Metrics) QuotaRejected(tenant string) {
	if m == nil {
		return
	}
	m.quota.rejected.WithLabelValues(tenant).Inc()
}
