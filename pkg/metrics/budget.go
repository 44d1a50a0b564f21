package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/deployq/deployq/pkg/vercel"
)

// budgetMetrics describe the fleet's API budget as this process sees it.
type budgetMetrics struct {
	wait        *prometheus.HistogramVec
	tokens      *prometheus.GaugeVec
	limited     *prometheus.CounterVec
	pausedUntil *prometheus.GaugeVec
	capped      *prometheus.CounterVec
	remaining   *prometheus.GaugeVec
	reset       *prometheus.GaugeVec
	limit       *prometheus.GaugeVec
	windowUsed  *prometheus.GaugeVec
	windowLimit *prometheus.GaugeVec
	parkedUntil *prometheus.GaugeVec
}

func newBudgetMetrics(f promauto.Factory) budgetMetrics {
	return budgetMetrics{
		wait: f.NewHistogramVec(histogramOpts(
			"ratelimit_wait_seconds",
			"Time API calls waited for the shared budget before being sent, by endpoint.",
			waitBuckets,
		), []string{"endpoint"}),
		tokens: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "ratelimit_tokens",
			Help:      "Calls the endpoint's shared bucket would allow right now, as of this process's last reservation.",
		}, []string{"endpoint"}),
		limited: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "vercel_rate_limited_total",
			Help:      "Answers refusing a call for budget, by endpoint and code (429 rate limit, 402 plan cap).",
		}, []string{"endpoint", "code"}),
		pausedUntil: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "ratelimit_paused_until_timestamp_seconds",
			Help:      "Unix time until which the endpoint's bucket is paused after a 429, a 402 or an exhausted remaining count; a pause is in force while it exceeds time().",
		}, []string{"endpoint"}),
		capped: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "ratelimit_pause_capped_total",
			Help:      "Announced waits (Retry-After, reset) longer than the configured maximum pause, which were capped.",
		}, []string{"endpoint"}),
		remaining: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "vercel_ratelimit_remaining",
			Help:      "X-RateLimit-Remaining of the endpoint's latest answer that carried it.",
		}, []string{"endpoint"}),
		reset: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "vercel_ratelimit_reset_timestamp_seconds",
			Help:      "X-RateLimit-Reset of the endpoint's latest answer that carried it: Unix time at which its window refills.",
		}, []string{"endpoint"}),
		limit: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "ratelimit_limit_requests",
			Help:      "Requests per window the endpoint's bucket allows (configured, or learned from X-RateLimit-Limit).",
		}, []string{"endpoint"}),
		windowUsed: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "ratelimit_window_used_requests",
			Help:      "Calls the fleet was granted in the endpoint's longer window (an hourly or daily cap) up to now, as of this process's last reservation.",
		}, []string{"endpoint", "window"}),
		windowLimit: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "ratelimit_window_limit_requests",
			Help:      "Calls the endpoint's longer window (an hourly or daily cap) allows.",
		}, []string{"endpoint", "window"}),
		parkedUntil: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "ratelimit_parked_until_timestamp_seconds",
			Help:      "Unix time until which the endpoint's calls were last parked because a longer window's allowance was spent; calls are parked while it exceeds time().",
		}, []string{"endpoint"}),
	}
}

func (m *Metrics) endpoint(ep vercel.Endpoint) string {
	if m.endpoints[ep] {
		return string(ep)
	}
	return other
}

// BudgetWait records how long a call waited for the budget.
func (m *Metrics) BudgetWait(ep vercel.Endpoint, d time.Duration) {
	if m == nil {
		return
	}
	m.budget.wait.WithLabelValues(m.endpoint(ep)).Observe(seconds(d))
}

// BudgetTokens records the calls an endpoint's bucket allows now.
func (m *Metrics) BudgetTokens(ep vercel.Endpoint, tokens float64) {
	if m == nil {
		return
	}
	m.budget.tokens.WithLabelValues(m.endpoint(ep)).Set(tokens)
}

// BudgetLimit records the requests per window an endpoint's bucket allows.
func (m *Metrics) BudgetLimit(ep vercel.Endpoint, requests int) {
	if m == nil {
		return
	}
	m.budget.limit.WithLabelValues(m.endpoint(ep)).Set(float64(requests))
}

// BudgetWindowUsed records the calls granted in one of an endpoint's
// longer windows (window written like "1h").
func (m *Metrics) BudgetWindowUsed(ep vercel.Endpoint, window string, used int) {
	if m == nil {
		return
	}
	m.budget.windowUsed.WithLabelValues(m.endpoint(ep), window).Set(float64(used))
}

// BudgetWindowLimit records the calls one of an endpoint's longer
// windows allows.
func (m *Metrics) BudgetWindowLimit(ep vercel.Endpoint, window string, requests int) {
	if m == nil {
		return
	}
	m.budget.windowLimit.WithLabelValues(m.endpoint(ep), window).Set(float64(requests))
}

// BudgetParked records that an endpoint's calls are parked until t: a
// longer window's allowance is spent.
func (m *Metrics) BudgetParked(ep vercel.Endpoint, until time.Time) {
	if m == nil {
		return
	}
	m.budget.parkedUntil.WithLabelValues(m.endpoint(ep)).Set(float64(until.UnixNano()) / 1e9)
}

// RateLimited records an answer refusing a call for budget: 429 or 402.
func (m *Metrics) RateLimited(ep vercel.Endpoint, status int) {
	if m == nil {
		return
	}
	m.budget.limited.WithLabelValues(m.endpoint(ep), statusCode(status)).Inc()
}

// BudgetPaused records that an endpoint's bucket is paused until t.
func (m *Metrics) BudgetPaused(ep vercel.Endpoint, until time.Time) {
	if m == nil {
		return
	}
	m.budget.pausedUntil.WithLabelValues(m.endpoint(ep)).Set(float64(until.UnixNano()) / 1e9)
}

// BudgetPauseCapped records an announced wait longer than the maximum pause.
func (m *Metrics) BudgetPauseCapped(ep vercel.Endpoint) {
	if m == nil {
		return
	}
	m.budget.capped.WithLabelValues(m.endpoint(ep)).Inc()
}

// RateLimitRemaining records X-RateLimit-Remaining and X-RateLimit-Reset
// of an answer; a zero reset (not reported) leaves the reset gauge as is.
func (m *Metrics) RateLimitRemaining(ep vercel.Endpoint, remaining int, reset time.Time) {
	if m == nil {
		return
	}
	m.budget.remaining.WithLabelValues(m.endpoint(ep)).Set(float64(remaining))
	if !reset.IsZero() {
		m.budget.reset.WithLabelValues(m.endpoint(ep)).Set(float64(reset.UnixNano()) / 1e9)
	}
}
