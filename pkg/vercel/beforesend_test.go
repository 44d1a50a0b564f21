package vercel

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// countingLimiter counts Wait and Observe calls.
type countingLimiter struct{ waits, observed atomic.Int32 }

func (l *countingLimiter) Wait(context.Context, Endpoint) error { l.waits.Add(1); return nil }
func (l *countingLimiter) Observe(Endpoint, int, RateLimit, error) {
	l.observed.Add(1)
}

// A WithBeforeSend check runs after the budget wait: when it fails,
// nothing is sent, its error comes back, and the limiter is still told
// (once) so that its accounting balances.
func TestBeforeSendRunsAfterTheWaitAndCanStopTheCall(t *testing.T) {
	t.Parallel()
	var sent atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent.Add(1)
		writeJSON(w, http.StatusOK, `{"id":"prj_1"}`)
	}))
	t.Cleanup(srv.Close)
	for _, withLimiter := range []bool{true, false} {
		lim := &countingLimiter{}
		opts := []Option{WithBaseURL(srv.URL), WithToken(testToken)}
		if withLimiter {
			opts = append(opts, WithLimiter(lim))
		}
		c, err := New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		lost := errors.New("lease lost")
		var waitsAtCheck int32
		ctx := WithBeforeSend(t.Context(), func(context.Context) error {
			waitsAtCheck = lim.waits.Load()
			return lost
		})
		before := sent.Load()
		if _, _, err := c.GetProject(ctx, "prj_1"); !errors.Is(err, lost) {
			t.Fatalf("limiter %v: err = %v, want the check's", withLimiter, err)
		}
		if sent.Load() != before {
			t.Fatalf("limiter %v: the request was sent", withLimiter)
		}
		if withLimiter && (waitsAtCheck != 1 || lim.observed.Load() != 1) {
			t.Fatalf("check ran after %d waits; %d observations, want 1 and 1", waitsAtCheck, lim.observed.Load())
		}
		ok := WithBeforeSend(t.Context(), func(context.Context) error { return nil })
		if _, _, err := c.GetProject(ok, "prj_1"); err != nil || sent.Load() != before+1 {
			t.Fatalf("limiter %v: a passing check: %v, %d sent", withLimiter, err, sent.Load()-before)
		}
	}
}
