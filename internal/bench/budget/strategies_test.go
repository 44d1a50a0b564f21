package budget

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// TestGuideTransport checks the model of the Prisma guide: every retry
// resends the same body, and the fourth 429 becomes a permanent error that
// the Vercel client reports with the rate_limited_gave_up code.
func TestGuideTransport(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	bodyCh := make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		bodyCh <- string(b)
		w.Header().Set("Retry-After", "10")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":{"code":"rate_limited","message":"Rate limit exceeded"}}`)
	}))
	t.Cleanup(srv.Close)

	gt := &guideTransport{base: http.DefaultTransport, unit: time.Millisecond, retries: guideRetries}
	api, err := vercel.New(vercel.WithBaseURL(srv.URL), vercel.WithToken("t"), vercel.WithHTTPClient(&http.Client{Transport: gt}))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = api.CreateProject(context.Background(), vercel.CreateProjectRequest{Name: "guide-test"})
	var apiErr *vercel.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Code != "rate_limited_gave_up" {
		t.Fatalf("err = %v, want a 400 rate_limited_gave_up", err)
	}
	if d := vercel.Classify(err); d.Class != vercel.Permanent {
		t.Errorf("Classify = %v, want permanent: the worker must not rescue the job", d.Class)
	}
	if got := calls.Load(); got != 1+guideRetries {
		t.Errorf("%d requests, want %d (one and %d retries)", got, 1+guideRetries, guideRetries)
	}
	close(bodyCh)
	i := 0
	for b := range bodyCh {
		i++
		var v map[string]any
		if err := json.Unmarshal([]byte(b), &v); err != nil || v["name"] != "guide-test" {
			t.Errorf("attempt %d sent body %q, want the original request", i, b)
		}
	}
}

func TestGuideTransportStopsWithContext(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	gt := &guideTransport{base: http.DefaultTransport, unit: time.Hour, retries: guideRetries}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader("{}"))
	start := time.Now()
	if _, err := gt.RoundTrip(req); err == nil {
		t.Fatal("RoundTrip succeeded, want the context's error")
	}
	if time.Since(start) > 10*time.Second {
		t.Error("RoundTrip slept through a cancelled context")
	}
}
