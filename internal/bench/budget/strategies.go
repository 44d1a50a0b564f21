package budget

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go/jetstream"
)

// strategy is one way of spending the API's rate limits.
type strategy string

const (
	// strategyShared is deployq's budget: buckets in NATS KV, shared by
	// every worker process.
	strategyShared strategy = "shared"
	// strategyLocal is the same budget over per-process buckets: the usual
	// client-side limiter, multiplied by the number of processes.
	strategyLocal strategy = "local"
	// strategyGuide is the Prisma guide's retry loop and nothing else.
	strategyGuide strategy = "guide"
)

func (s strategy) valid() bool {
	return s == strategyShared || s == strategyLocal || s == strategyGuide
}

// describe is the one-line description used in the table and the plot.
func (s strategy) describe() string {
	switch s {
	case strategyShared:
		return "shared budget (NATS KV)"
	case strategyLocal:
		return "per-process budgets"
	case strategyGuide:
		return "Prisma guide: 429 → sleep 1, 2, 4 s, give up"
	}
	return string(s)
}

// clientOptions returns the Vercel client options that make a worker
// process follow s, and what to release when the process ends. limits are
// the ones the simulator enforces: a real deployment configures Vercel's
// documented values, so both budgets get exactly those.
func clientOptions(ctx context.Context, s strategy, js jetstream.JetStream, limits map[vercel.Endpoint]budget.Limit, team string, log *slog.Logger) ([]vercel.Option, func(), error) {
	transport := benchTransport()
	cfg := budget.Config{Team: team, Limits: limits, Logger: log}
	switch s {
	case strategyShared:
		store, err := budget.NewKVStore(ctx, js, budget.KVStoreConfig{Replicas: 1})
		if err != nil {
			return nil, nil, fmt.Errorf("budget store: %w", err)
		}
		b, err := budget.New(store, cfg)
		if err != nil {
			store.Close()
			return nil, nil, err
		}
		return []vercel.Option{vercel.WithLimiter(b), vercel.WithHTTPClient(&http.Client{Transport: transport})}, store.Close, nil
	case strategyLocal:
		b, err := budget.New(budget.NewMemoryStore(), cfg)
		if err != nil {
			return nil, nil, err
		}
		return []vercel.Option{vercel.WithLimiter(b), vercel.WithHTTPClient(&http.Client{Transport: transport})}, func() {}, nil
	case strategyGuide:
		gt := &guideTransport{base: transport, unit: time.Second, retries: guideRetries}
		return []vercel.Option{vercel.WithHTTPClient(&http.Client{Transport: gt})}, func() {}, nil
	}
	return nil, nil, fmt.Errorf("unknown strategy %q", s)
}

// benchTransport is the transport of every strategy, so that they differ
// only in how they spend the limits. It keeps enough idle connections for a
// process's concurrency: the default of 2 per host would open and close a
// loopback connection for most calls.
func benchTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}

// guideRetries is how many times the Prisma guide retries a 429.
const guideRetries = 3

// gaveUpBody is the answer that stands for the guide's giving up. Its code
// starts with rate_limited so that the failure is counted as one caused by
// rate limits.
const gaveUpBody = `{"error":{"code":"rate_limited_gave_up","message":"gave up after 3 retries on 429 (Prisma guide strategy)"}}`

// guideTransport models the Prisma guide's handling of rate limits below
// the Vercel client: on a 429 it sleeps unit·2^attempt (1, 2, 4 s) and sends
// the same request again; after the last retry it answers 400 in the API's
// error shape. A 400 is permanent for the worker, so the job fails at once,
// as the guide's code would, and the worker's own 429 handling (which waits
// for the reset and would rescue the job) never sees a 429.
type guideTransport struct {
	base    http.RoundTripper
	unit    time.Duration
	retries int
}

func (t *guideTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// The body is buffered so each retry can send it again.
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		r := req.Clone(req.Context())
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			r.ContentLength = int64(len(body))
		}
		resp, err := t.base.RoundTrip(r)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests {
			return resp, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if attempt >= t.retries {
			return gaveUp(req, resp), nil
		}
		timer := time.NewTimer(t.unit << attempt)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		case <-timer.C:
		}
	}
}

// gaveUp is the synthetic permanent answer after the last 429.
func gaveUp(req *http.Request, last *http.Response) *http.Response {
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	if id := last.Header.Get("x-vercel-id"); id != "" {
		h.Set("x-vercel-id", id)
	}
	return &http.Response{
		Status:        "400 Bad Request",
		StatusCode:    http.StatusBadRequest,
		Proto:         last.Proto,
		ProtoMajor:    last.ProtoMajor,
		ProtoMinor:    last.ProtoMinor,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader([]byte(gaveUpBody))),
		ContentLength: int64(len(gaveUpBody)),
		Request:       req,
	}
}
