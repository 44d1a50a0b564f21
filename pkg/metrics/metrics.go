package metrics

import (
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/deployq/deployq/pkg/vercel"
)

const namespace = "deployq"

// BuildInfo identifies the running binary in deployq_build_info.
type BuildInfo struct {
	// Version is the release, such as "v1.4.0". Defaults to "unknown".
	Version string
	// Revision is the VCS commit the binary was built from. Defaults to
	// "unknown".
	Revision string
}

// Metrics records what the worker does. Create it with New; the zero value
// is not usable, but a nil *Metrics is, and records nothing.
type Metrics struct {
	jobsInFlight     prometheus.Gauge
	jobsProcessed    *prometheus.CounterVec
	jobAttempts      *prometheus.CounterVec
	jobDuration      *prometheus.HistogramVec
	lastJobCompleted prometheus.Gauge
	queueWait        prometheus.Histogram
	redeliveries     prometheus.Counter
	deadLettered     *prometheus.CounterVec

	stepDuration *prometheus.HistogramVec

	concurrency   prometheus.Gauge
	ready         prometheus.Gauge
	credentialsOK prometheus.Gauge

	vercelRequests        *prometheus.CounterVec
	vercelRequestDuration *prometheus.HistogramVec

	budget budgetMetrics
	queue  queueMetrics
	quota  quotaMetrics
	apps   appMetrics
	build  buildMetrics

	steps     *labelSet
	reasons   *labelSet
	endpoints map[vercel.Endpoint]bool
}

// Bucket layouts, in seconds, sized to what each histogram measures so that
// the interesting quantiles fall between buckets rather than past the last.
var (
	// A Vercel API call takes tens of milliseconds to a few seconds; the
	// top buckets catch calls that run into the client's request timeout.
	apiBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// A pipeline step ranges from one API call to waiting minutes for a
	// build to become ready.
	stepBuckets = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	// A job, enqueue to result, includes its build and any retries; jobs
	// are expected to finish within about 30 minutes.
	jobBuckets = []float64{1, 2.5, 5, 10, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600}
	// Queue wait is near zero when workers keep up and grows to hours in
	// a backlog; the alert on backlog age needs the upper range.
	waitBuckets = []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200}
)

// New creates the worker's collectors and registers them on reg. A nil reg
// registers nothing, which suits tests that only read values back.
// Registering twice on the same registry panics, as promauto does.
func New(reg prometheus.Registerer, info BuildInfo) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		jobsInFlight: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "jobs_in_flight",
			Help:      "Deploy jobs this worker is running now.",
		}),
		jobsProcessed: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "jobs_processed_total",
			Help:      "Deploy jobs finished, by outcome.",
		}, []string{"outcome"}),
		jobAttempts: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "job_attempts_total",
			Help:      "Delivery attempts spent on finished deploy jobs, by the job's outcome.",
		}, []string{"outcome"}),
		jobDuration: f.NewHistogramVec(histogramOpts(
			"job_duration_seconds",
			"Time from enqueue to result of finished deploy jobs, by outcome.",
			jobBuckets,
		), []string{"outcome"}),
		lastJobCompleted: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "last_job_completed_timestamp_seconds",
			Help:      "Unix time at which this worker last finished a job successfully.",
		}),
		queueWait: f.NewHistogram(histogramOpts(
			"job_queue_wait_seconds",
			"Time from publishing a deploy request to its first pipeline step.",
			waitBuckets,
		)),
		redeliveries: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "job_redeliveries_total",
			Help:      "Deploy requests received again after an earlier delivery was not acknowledged.",
		}),
		deadLettered: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "jobs_dead_lettered_total",
			Help:      "Deploy requests moved to the dead-letter stream, by reason.",
		}, []string{"reason"}),
		stepDuration: f.NewHistogramVec(histogramOpts(
			"pipeline_step_duration_seconds",
			"Duration of pipeline steps, by step and outcome (success, failure, retry).",
			stepBuckets,
		), []string{"step", "outcome"}),
		concurrency: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "worker_concurrency",
			Help:      "Deploy jobs this worker may run at once.",
		}),
		ready: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "worker_ready",
			Help:      "1 when the worker is connected and taking jobs, else 0.",
		}),
		credentialsOK: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "vercel_credentials_ok",
			Help:      "1 while Vercel accepts the access token; 0 before it was checked or after a 401 or 403.",
		}),
		vercelRequests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "vercel_requests_total",
			Help:      "HTTP attempts against the Vercel API, by endpoint and status code (\"network\" when no answer arrived).",
		}, []string{"endpoint", "code"}),
		vercelRequestDuration: f.NewHistogramVec(histogramOpts(
			"vercel_request_duration_seconds",
			"Duration of HTTP attempts against the Vercel API, by endpoint.",
			apiBuckets,
		), []string{"endpoint"}),
		steps:     newLabelSet(maxSteps),
		reasons:   newLabelSet(maxReasons),
		endpoints: make(map[vercel.Endpoint]bool),
	}
	for _, ep := range vercel.Endpoints() {
		m.endpoints[ep] = true
	}
	m.budget = newBudgetMetrics(f)
	m.queue = newQueueMetrics(f)
	m.quota = newQuotaMetrics(f)
	m.apps = newAppMetrics(f)
	m.build = newBuildMetrics(f)

	// Series that exist from the start let rate() and ratio alerts see a
	// zero instead of "no data" before the first job of each outcome.
	for _, o := range outcomes {
		m.jobsProcessed.WithLabelValues(o)
		m.jobAttempts.WithLabelValues(o)
	}
	// The same for the budget counters the 429-ratio and plan-cap alerts
	// read: their first increment must count.
	for ep := range m.endpoints {
		for _, code := range []string{"429", "402"} {
			m.budget.limited.WithLabelValues(string(ep), code)
		}
		m.budget.capped.WithLabelValues(string(ep))
	}

	f.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "Always 1; the labels identify the running binary.",
	}, []string{"version", "revision", "goversion"}).
		WithLabelValues(orUnknown(info.Version), orUnknown(info.Revision), runtime.Version()).
		Set(1)
	return m
}

// histogramOpts gives classic buckets, which every Prometheus understands,
// and a native layout too, which servers scraping protobuf use for finer
// quantiles at a similar cost.
func histogramOpts(name, help string, buckets []float64) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Namespace:                       namespace,
		Name:                            name,
		Help:                            help,
		Buckets:                         buckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}
}

func orUnknown(s string) string {
	if s == "" {
		// An empty label value is the same as no label in Prometheus,
		// which would make queries on the label silently miss this series.
		return "unknown"
	}
	return s
}

// seconds converts d for a histogram. A negative duration comes from clocks
// that disagree (the publisher's and ours, for queue wait) and is counted as
// zero rather than dropped, so the count still matches the jobs.
func seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}

// SetConcurrency records how many jobs the worker may run at once.
func (m *Metrics) SetConcurrency(n int) {
	if m == nil {
		return
	}
	m.concurrency.Set(float64(max(n, 0)))
}

// SetReady records whether the worker is connected and taking jobs.
func (m *Metrics) SetReady(ready bool) {
	if m == nil {
		return
	}
	m.ready.Set(boolValue(ready))
}

// SetCredentialsOK records whether Vercel accepts the access token.
func (m *Metrics) SetCredentialsOK(ok bool) {
	if m == nil {
		return
	}
	m.credentialsOK.Set(boolValue(ok))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
