package budget

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// report is the whole run, as written to the JSON file.
type report struct {
	Machine  bench.Machine `json:"machine"`
	Settings settings      `json:"settings"`
	Results  []result      `json:"results"`
}

// settings are the knobs every strategy ran with.
type settings struct {
	Requests      int               `json:"requestsPerStrategy"`
	Processes     int               `json:"processes"`
	Concurrency   int               `json:"concurrencyPerProcess"`
	BuildTime     string            `json:"buildTime"`
	BuildJitter   string            `json:"buildJitter"`
	Limits        map[string]string `json:"limits"`
	Bottleneck    string            `json:"bottleneck"`
	Seed          int64             `json:"simulatorSeed"`
	Concurrent    bool              `json:"strategiesRunConcurrently"`
	Timeout       string            `json:"timeout"`
	SmoothSeconds int               `json:"plotMovingAverageSeconds"`
	// Command reproduces the run.
	Command string `json:"command"`
	// HeadersStripped is true when the simulator's X-RateLimit-* headers
	// were removed from its answers.
	HeadersStripped bool `json:"rateLimitHeadersStripped"`
}

// result is what one strategy achieved. Durations are in seconds, shares
// and utilizations are fractions (1 = 100 %).
type result struct {
	Strategy        string `json:"strategy"`
	Description     string `json:"description"`
	Submitted       int    `json:"submitted"`
	Succeeded       int    `json:"succeeded"`
	Failed          int    `json:"failed"`
	FailedRateLimit int    `json:"failedForRateLimits"`
	Rejected        int    `json:"rejected"`
	Missing         int    `json:"missing"`
	// Failures counts failed requests by "<code> at <step>".
	Failures map[string]int `json:"failures,omitempty"`

	Requests         int     `json:"apiRequests"`
	RateLimited      int     `json:"apiRateLimited"`
	RateLimitedShare float64 `json:"rateLimitedShare"`
	// RequestsPerDeploy is every API request ÷ succeeded deploys; 0 when
	// none succeeded.
	RequestsPerDeploy float64 `json:"requestsPerSucceededDeploy"`

	Bottleneck bottleneck `json:"bottleneck"`

	WallSeconds      float64     `json:"wallSeconds"`
	LatencySucceeded percentiles `json:"submitToTerminalSucceeded"`
	LatencyAll       percentiles `json:"submitToTerminalAll"`

	Endpoints   []endpointResult `json:"endpoints"`
	Series      series           `json:"bottleneckSeries"`
	WorkerExits []string         `json:"workerExits"`
	Problems    []string         `json:"problems,omitempty"`
}

// bottleneck is the use of the endpoint with the tightest limit.
type bottleneck struct {
	Endpoint      string  `json:"endpoint"`
	Limit         int     `json:"limitRequests"`
	WindowSeconds float64 `json:"limitWindowSeconds"`
	Requests      int     `json:"requests"`
	Succeeded     int     `json:"succeeded"`
	RateLimited   int     `json:"rateLimited"`
	// FirstRequest and LastRequest are seconds after the first submit.
	FirstRequest float64 `json:"firstRequestSeconds"`
	LastRequest  float64 `json:"lastRequestSeconds"`
	// ActiveSpan is LastRequest - FirstRequest; RunSpan is the first
	// submit to the last terminal event.
	ActiveSpan        float64 `json:"activeSpanSeconds"`
	UtilizationActive float64 `json:"utilizationActiveSpan"`
	RunSpan           float64 `json:"runSpanSeconds"`
	UtilizationRun    float64 `json:"utilizationWholeRun"`
	// PerWindow is the share of the limit used in each whole window of
	// the binding limit, back to back from the first call: what an API
	// counting in fixed windows saw. Empty when the run spans no whole
	// window.
	PerWindow []float64 `json:"utilizationPerWindow,omitempty"`
}

type percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Seconds"`
	P99   float64 `json:"p99Seconds"`
}

type endpointResult struct {
	Endpoint    string  `json:"endpoint"`
	Requests    int     `json:"requests"`
	Succeeded   int     `json:"succeeded"`
	RateLimited int     `json:"rateLimited"`
	PerDeploy   float64 `json:"requestsPerSucceededDeploy"`
}

// series is the bottleneck's answers per second, from the second of the
// first submit on: successes as the simulator counted them, 429s as the
// recorder saw them.
type series struct {
	StartUnix   int64 `json:"startUnixSecond"`
	Succeeded   []int `json:"succeededPerSecond"`
	RateLimited []int `json:"rateLimitedPerSecond"`
}

// summarize turns one run's raw data into its result.
func summarize(o options, d *runData) result {
	r := result{
		Strategy:    string(d.strategy),
		Description: d.strategy.describe(),
		Submitted:   len(d.submitted),
		Missing:     len(d.missing),
		Failures:    map[string]int{},
		WorkerExits: d.exits,
		Problems:    d.problems,
	}
	start := earliest(d.submitted)
	var end time.Time
	var okLat, allLat []time.Duration
	for id, ev := range d.terminal {
		lat := ev.Time.Sub(d.submitted[id])
		allLat = append(allLat, lat)
		if ev.Time.After(end) {
			end = ev.Time
		}
		switch ev.Type {
		case jobs.TypeSucceeded:
			r.Succeeded++
			okLat = append(okLat, lat)
		case jobs.TypeRejected:
			r.Rejected++
		default:
			r.Failed++
			code, step := "unknown", cmp.Or(ev.Data.Step, "?")
			if e := ev.Data.Error; e != nil {
				code, step = e.Code, cmp.Or(e.Step, step)
			}
			r.Failures[code+" at "+string(step)]++
			if rateLimitFailure(ev.Data.Error) {
				r.FailedRateLimit++
			}
		}
	}
	if d.timedOut {
		end = start.Add(o.timeout)
	}
	r.WallSeconds = end.Sub(start).Seconds()
	r.LatencySucceeded = percentilesOf(okLat)
	r.LatencyAll = percentilesOf(allLat)

	for _, ep := range vercel.Endpoints() {
		req := d.stats.Requests[ep]
		if req == 0 {
			continue
		}
		r.Requests += req
		r.RateLimited += d.stats.RateLimited[ep]
		r.Endpoints = append(r.Endpoints, endpointResult{
			Endpoint: string(ep), Requests: req, Succeeded: d.stats.Succeeded[ep],
			RateLimited: d.stats.RateLimited[ep], PerDeploy: ratio(req, r.Succeeded),
		})
	}
	r.RateLimitedShare = ratio(r.RateLimited, r.Requests)
	r.RequestsPerDeploy = ratio(r.Requests, r.Succeeded)

	lim := binding(o.limits[o.bottleneck])
	tr := d.trace[o.bottleneck]
	b := bottleneck{
		Endpoint: string(o.bottleneck), Limit: lim.Requests, WindowSeconds: lim.Window.Seconds(),
		Requests: d.stats.Requests[o.bottleneck], Succeeded: d.stats.Succeeded[o.bottleneck],
		RateLimited: d.stats.RateLimited[o.bottleneck],
	}
	if !tr.First.IsZero() {
		b.FirstRequest = tr.First.Sub(start).Seconds()
		b.LastRequest = tr.Last.Sub(start).Seconds()
		active := tr.Last.Sub(tr.First)
		b.ActiveSpan = active.Seconds()
		b.UtilizationActive = utilization(b.Succeeded, lim.Requests, lim.Window, active)
	}
	b.RunSpan = r.WallSeconds
	b.UtilizationRun = utilization(b.Succeeded, lim.Requests, lim.Window, end.Sub(start))
	b.PerWindow = perWindow(d.stats.PerSecond[o.bottleneck], lim)
	r.Bottleneck = b
	r.Series = seriesOf(start, end, d.stats.PerSecond[o.bottleneck], tr)
	return r
}

// binding is the window of l that allows the fewest calls a second: the
// one a long run at the limit is held to, whose allowance utilization is
// measured against.
func binding(l budget.Limit) budget.Cap {
	b := budget.Cap{Requests: l.Requests, Window: l.Window}
	for _, c := range l.Caps {
		if float64(c.Requests)/c.Window.Seconds() < float64(b.Requests)/b.Window.Seconds() {
			b = c
		}
	}
	return b
}

// perWindow is the share of lim used in each whole window of lim, back to
// back from the second of the first call, by the seconds' counts.
func perWindow(secs []vercelsim.SecondCount, lim budget.Cap) []float64 {
	if len(secs) == 0 || lim.Requests <= 0 || lim.Window < time.Second {
		return nil
	}
	first, last := secs[0].Second, secs[len(secs)-1].Second
	var out []float64
	i := 0
	for w := first; !w.Add(lim.Window).After(last); w = w.Add(lim.Window) {
		n := 0
		for ; i < len(secs) && secs[i].Second.Before(w.Add(lim.Window)); i++ {
			n += secs[i].Count
		}
		out = append(out, float64(n)/float64(lim.Requests))
	}
	return out
}

// utilization is the share of an endpoint's allowance that calls used over
// span: calls ÷ (limit × span / window). A client that sends exactly at the
// limit, evenly, scores calls/(calls-1) over the span from its first to its
// last call, a hair above 1; fixed windows let a burst at both ends of the
// span score up to 2 on a short span.
func utilization(calls, limit int, window, span time.Duration) float64 {
	if limit <= 0 || window <= 0 || span <= 0 {
		return 0
	}
	return float64(calls) / (float64(limit) * span.Seconds() / window.Seconds())
}

// percentilesOf returns the nearest-rank p50 and p99: the smallest value
// that at least p of the samples do not exceed.
func percentilesOf(ds []time.Duration) percentiles {
	if len(ds) == 0 {
		return percentiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(i, 0)].Seconds()
	}
	return percentiles{Count: len(s), P50: rank(0.50), P99: rank(0.99)}
}

// rateLimitFailure says whether a failed request failed because of rate
// limits: its code is rate_limited or starts with it (the guide's
// rate_limited_gave_up), or it is the plan cap's reason.
func rateLimitFailure(e *jobs.EventError) bool {
	if e == nil {
		return false
	}
	return strings.HasPrefix(e.Code, vercel.ReasonRateLimited) || e.Code == vercel.ReasonPlanLimit
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func earliest(ts map[string]time.Time) time.Time {
	var first time.Time
	for _, t := range ts {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}

// seriesOf lays the per-second counts out on consecutive seconds, from the
// second of start to the later of end and the last recorded answer.
func seriesOf(start, end time.Time, succeeded []vercelsim.SecondCount, tr endpointTrace) series {
	first := start.Unix()
	last := end.Unix()
	for _, sc := range succeeded {
		last = max(last, sc.Second.Unix())
	}
	for sec := range tr.Seconds {
		last = max(last, sec)
	}
	n := int(last-first) + 1
	if n < 1 {
		return series{StartUnix: first}
	}
	s := series{StartUnix: first, Succeeded: make([]int, n), RateLimited: make([]int, n)}
	for _, sc := range succeeded {
		if i := int(sc.Second.Unix() - first); i >= 0 && i < n {
			s.Succeeded[i] += sc.Count
		}
	}
	for sec, c := range tr.Seconds {
		if i := int(sec - first); i >= 0 && i < n {
			s.RateLimited[i] += c.rateLimited
		}
	}
	return s
}
