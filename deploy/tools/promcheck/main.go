// Command promcheck queries a live Prometheus that scraped a worker while
// the demo ran, for deploy/lint.sh:
//
//	promcheck -prometheus URL -succeeded N [-job deployq-worker] [-timeout D] [-quiet-panels ID,…]
//
// It waits until Prometheus has scraped the worker and seen N successful
// jobs, then checks, through the HTTP API, the job, step, Vercel, budget,
// backlog and health series; that every recording and alerting rule loaded
// (deploy/prometheus/rules and the dashboard's panel queries) evaluated
// without error; that every dashboard panel query returned data, except
// those of -quiet-panels (retries, pauses, refused credentials: empty when
// all is well); and that no alert fires on a healthy run.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	base := flag.String("prometheus", "http://127.0.0.1:9090", "Prometheus base URL")
	job := flag.String("job", "deployq-worker", "scrape job of the worker")
	succeeded := flag.Int("succeeded", 0, "successful jobs the demo ran")
	timeout := flag.Duration("timeout", 90*time.Second, "how long to wait for Prometheus to see them")
	quiet := flag.String("quiet-panels", "", "comma-separated ids of dashboard panels that show only trouble, so may be empty on a healthy run")
	flag.Parse()
	quietPanels := map[string]bool{}
	for _, id := range strings.Split(*quiet, ",") {
		if id = strings.TrimSpace(id); id != "" {
			quietPanels[id] = true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c := &client{base: strings.TrimRight(*base, "/")}
	if err := run(ctx, c, *job, *succeeded, quietPanels); err != nil {
		fmt.Fprintln(os.Stderr, "promcheck:", err)
		os.Exit(1)
	}
}

type client struct{ base string }

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string
	Value  float64
}

type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func (c *client) get(ctx context.Context, path string, q url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, body)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, out)
}

// query runs an instant query and returns its vector.
func (c *client) query(ctx context.Context, expr string) ([]sample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := c.get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, fmt.Errorf("%s: %w", expr, err)
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: result type %s, want vector", expr, data.ResultType)
	}
	out := make([]sample, 0, len(data.Result))
	for _, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %q: %w", expr, s, err)
		}
		out = append(out, sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// scalar runs a query that must return exactly one sample.
func (c *client) scalar(ctx context.Context, expr string) (float64, error) {
	v, err := c.query(ctx, expr)
	if err != nil {
		return 0, err
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("%s: %d samples, want 1", expr, len(v))
	}
	return v[0].Value, nil
}

// waitFor polls expr until cond holds for its single value.
func (c *client) waitFor(ctx context.Context, expr string, cond func(float64) bool) (float64, error) {
	for {
		v, err := c.scalar(ctx, expr)
		if err == nil && cond(v) {
			return v, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("last value %v", v)
			}
			return v, fmt.Errorf("waiting for %s: %w", expr, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ruleGroups is the answer of /api/v1/rules.
type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Name           string    `json:"name"`
			Type           string    `json:"type"`
			Health         string    `json:"health"`
			LastError      string    `json:"lastError"`
			State          string    `json:"state"`
			LastEvaluation time.Time `json:"lastEvaluation"`
		} `json:"rules"`
	} `json:"groups"`
}

// rulesEvaluatedAfter polls the rules until every rule was last evaluated
// after t, and returns them.
func (c *client) rulesEvaluatedAfter(ctx context.Context, t time.Time) (ruleGroups, error) {
	for {
		var rules ruleGroups
		if err := c.get(ctx, "/api/v1/rules", url.Values{}, &rules); err != nil {
			return rules, err
		}
		fresh := len(rules.Groups) > 0
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				fresh = fresh && r.LastEvaluation.After(t)
			}
		}
		if fresh {
			return rules, nil
		}
		select {
		case <-ctx.Done():
			return rules, fmt.Errorf("waiting for the rules to be evaluated again: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func ok(format string, a ...any) { fmt.Printf("  ok     "+format+"\n", a...) }

func run(ctx context.Context, c *client, job string, succeeded int, quietPanels map[string]bool) error {
	if succeeded <= 0 {
		return errors.New("-succeeded must be positive")
	}
	sel := `job="` + job + `"`
	if _, err := c.waitFor(ctx, `up{`+sel+`}`, func(v float64) bool { return v == 1 }); err != nil {
		return err
	}
	ok("Prometheus scrapes the worker: up{%s} = 1", sel)
	if _, err := c.waitFor(ctx, `sum(deployq_jobs_processed_total{`+sel+`,outcome="success"})`,
		func(v float64) bool { return v >= float64(succeeded) }); err != nil {
		return err
	}
	// The rules read the scraped series: wait for a round of every group
	// that began after the successes were seen.
	rules, err := c.rulesEvaluatedAfter(ctx, time.Now())
	if err != nil {
		return err
	}

	type check struct {
		what, expr string
		cond       func(float64) bool
		want       string
	}
	eq := func(n float64) func(float64) bool { return func(v float64) bool { return v == n } }
	atLeast := func(n float64) func(float64) bool { return func(v float64) bool { return v >= n } }
	n := float64(succeeded)
	checks := []check{
		// Jobs.
		{"jobs by outcome", `sum(deployq_jobs_processed_total{` + sel + `,outcome="success"})`, eq(n), fmt.Sprint(n)},
		{"failed jobs", `sum(deployq_jobs_processed_total{` + sel + `,outcome=~"failure|dead_letter|rejected"})`, eq(0), "0"},
		{"attempts of successful jobs", `sum(deployq_job_attempts_total{` + sel + `,outcome="success"})`, atLeast(n), fmt.Sprintf(">= %v", n)},
		{"job duration observations", `sum(deployq_job_duration_seconds_count{` + sel + `,outcome="success"})`, eq(n), fmt.Sprint(n)},
		{"p50 submit-to-result latency (s)", `histogram_quantile(0.5, sum by (le) (rate(deployq_job_duration_seconds_bucket{` + sel + `,outcome="success"}[5m])))`, func(v float64) bool { return v > 0 }, "> 0"},
		{"queue wait observations", `sum(deployq_job_queue_wait_seconds_count{` + sel + `})`, atLeast(n), fmt.Sprintf(">= %v", n)},
		{"steps with successful runs", `count(sum by (step) (deployq_pipeline_step_duration_seconds_count{` + sel + `,outcome="success"}))`, eq(8), "8"},
		{"most jobs in flight at once", `max_over_time(deployq_jobs_in_flight{` + sel + `}[10m])`, atLeast(1), ">= 1"},
		{"jobs in flight now", `deployq_jobs_in_flight{` + sel + `}`, eq(0), "0"},
		{"last success (s ago)", `time() - deployq_last_job_completed_timestamp_seconds{` + sel + `}`, func(v float64) bool { return v >= 0 && v < 600 }, "< 600"},
		{"dead letters by reason series", `count(deployq_jobs_dead_lettered_total{` + sel + `})`, eq(3), "3 (created at 0)"},
		// Health.
		{"worker ready", `deployq_worker_ready{` + sel + `}`, eq(1), "1"},
		{"credentials accepted", `deployq_vercel_credentials_ok{` + sel + `}`, eq(1), "1"},
		{"concurrency", `deployq_worker_concurrency{` + sel + `}`, atLeast(1), ">= 1"},
		{"build info", `count(deployq_build_info{` + sel + `} == 1)`, eq(1), "1"},
		// Backlog.
		{"backlog", `deployq_queue_pending_requests{` + sel + `}`, atLeast(0), "present"},
		{"age of the oldest pending request (s)", `deployq_queue_oldest_pending_age_seconds{` + sel + `}`, atLeast(0), "present"},
		// Vercel API.
		{"successful API calls", `sum(deployq_vercel_requests_total{` + sel + `,code=~"2.."})`, atLeast(7 * n), fmt.Sprintf(">= %v (7 per deploy)", 7*n)},
		{"endpoints called", `count(sum by (endpoint) (deployq_vercel_requests_total{` + sel + `}))`, atLeast(8), ">= 8"},
		{"API latency observations", `sum(deployq_vercel_request_duration_seconds_count{` + sel + `})`, atLeast(7 * n), fmt.Sprintf(">= %v", 7*n)},
		{"429 ratio (recording rule)", `deployq:vercel_rate_limited_ratio:rate15m`, atLeast(0), "present"},
		// Budget.
		{"deployments.create budget (requests per window)", `deployq_ratelimit_limit_requests{` + sel + `,endpoint="deployments.create"}`, func(v float64) bool { return v > 0 }, "> 0"},
		{"deployments.create calls paced by the budget", `sum(deployq_ratelimit_wait_seconds_count{` + sel + `,endpoint="deployments.create"})`, atLeast(n), fmt.Sprintf(">= %v", n)},
		{"calls that waited for the budget", `sum(deployq_ratelimit_wait_seconds_count{` + sel + `}) - sum(deployq_ratelimit_wait_seconds_bucket{` + sel + `,le="0.01"})`, atLeast(1), ">= 1"},
		{"budget tokens series", `count(deployq_ratelimit_tokens{` + sel + `})`, atLeast(1), ">= 1"},
		{"429 and 402 counter series", `count(deployq_vercel_rate_limited_total{` + sel + `})`, atLeast(16), ">= 16 (created at 0)"},
		// Recording rules.
		{"success rate (recording rule)", `deployq:jobs_processed:rate5m{outcome="success"}`, func(v float64) bool { return v > 0 }, "> 0"},
		{"p90 submit-to-result (recording rule)", `deployq:job_duration_seconds:p90`, func(v float64) bool { return v > 0 }, "> 0"},
	}
	var failed []string
	for _, ch := range checks {
		v, err := c.scalar(ctx, ch.expr)
		switch {
		case err != nil:
			failed = append(failed, err.Error())
			fmt.Printf("  FAIL   %s: %v\n", ch.what, err)
		case !ch.cond(v):
			failed = append(failed, fmt.Sprintf("%s = %v, want %s", ch.what, v, ch.want))
			fmt.Printf("  FAIL   %s = %v, want %s (%s)\n", ch.what, v, ch.want, ch.expr)
		default:
			ok("%s = %s", ch.what, strconv.FormatFloat(v, 'g', 4, 64))
		}
	}

	// Every loaded rule evaluated without error; no alert fires; every
	// dashboard query returned data.
	var recording, alerting, panels int
	var empty, quietEmpty []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			switch {
			case r.Health != "ok" || r.LastEvaluation.IsZero():
				failed = append(failed, fmt.Sprintf("rule %s (%s): health %q %s", r.Name, g.Name, r.Health, r.LastError))
				fmt.Printf("  FAIL   rule %s: health %q, last evaluation %s: %s\n", r.Name, r.Health, r.LastEvaluation, r.LastError)
				continue
			case r.Type == "alerting":
				alerting++
				if r.State != "inactive" {
					failed = append(failed, fmt.Sprintf("alert %s is %s on a healthy run", r.Name, r.State))
					fmt.Printf("  FAIL   alert %s is %s on a healthy run\n", r.Name, r.State)
				}
				continue
			}
			recording++
			if strings.HasPrefix(r.Name, "dashboard:") {
				panels++
				v, err := c.query(ctx, r.Name)
				if err != nil {
					return err
				}
				// dashboard:panel_<id>_<ref>
				id := strings.Split(strings.TrimPrefix(r.Name, "dashboard:panel_"), "_")[0]
				switch {
				case len(v) > 0:
				case quietPanels[id]:
					quietEmpty = append(quietEmpty, id)
				default:
					empty = append(empty, r.Name)
				}
			}
		}
	}
	if panels == 0 {
		failed = append(failed, "no dashboard queries were loaded as rules")
	}
	sort.Strings(empty)
	for _, e := range empty {
		failed = append(failed, "dashboard query "+e+" returned no data")
		fmt.Printf("  FAIL   dashboard query %s returned no data\n", e)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d checks failed", len(failed))
	}
	sort.Strings(quietEmpty)
	ok("%d recording rules and %d alerts evaluated without error; no alert fires", recording, alerting)
	ok("%d dashboard panel queries evaluated: all returned data but panels %s, which show only trouble",
		panels, strings.Join(quietEmpty, ", "))
	return nil
}
