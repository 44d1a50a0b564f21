package budget

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go/jetstream"
)

// natsConns starts one embedded server and returns n JetStream handles,
// each on its own connection, as n worker processes would have.
func natsConns(tb testing.TB, n int) []jetstream.JetStream {
	tb.Helper()
	srv, err := natsembed.Start(natsembed.Options{Dir: filepath.Join(tb.TempDir(), "nats"), Port: -1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Shutdown)
	var out []jetstream.JetStream
	for range n {
		nc, err := srv.Connect()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		out = append(out, js)
	}
	return out
}

// kvStores returns n stores on n connections to one server.
func kvStores(tb testing.TB, n int) []*KVStore {
	tb.Helper()
	var out []*KVStore
	for _, js := range natsConns(tb, n) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := NewKVStore(ctx, js, KVStoreConfig{})
		cancel()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(s.Close)
		out = append(out, s)
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Reservations from many processes and goroutines at once all land on
// distinct slots, one interval apart: nothing is granted twice.
func TestKVStoreSharesOneScheduleUnderContention(t *testing.T) {
	t.Parallel()
	stores := kvStores(t, 3)
	clock := newFakeClock() // frozen: every grant is a future slot
	limit := Limit{Requests: 10, Window: time.Second}
	var mu sync.Mutex
	var slots []int64
	var wg sync.WaitGroup
	for _, s := range stores {
		for range 16 {
			wg.Go(func() {
				for range 5 {
					var at int64
					_, err := s.Update(context.Background(), "team.deployments.create", func(st *State) {
						at, _ = reserve(st, clock.Now().UnixNano(), newRule(limit, st.Limit, 1))
					})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					slots = append(slots, at)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	slices.Sort(slots)
	if len(slots) != 3*16*5 {
		t.Fatalf("%d slots granted", len(slots))
	}
	step := int64(100 * time.Millisecond)
	for i, at := range slots {
		if want := clock.Now().UnixNano() + int64(i)*step; at != want {
			t.Fatalf("slot %d at +%v, want +%v (a slot granted twice or skipped)", i, time.Duration(at-clock.Now().UnixNano()), time.Duration(want-clock.Now().UnixNano()))
		}
	}
}

// A 429 seen by one process pauses the bucket for another one's waiters.
func TestKVStorePausePropagates(t *testing.T) {
	t.Parallel()
	stores := kvStores(t, 2)
	clock := newFakeClock()
	limits := map[vercel.Endpoint]Limit{ep: {Requests: 100, Window: time.Minute}}
	a, err := New(stores[0], Config{Limits: limits, Clock: clock.Now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(stores[1], Config{Limits: limits, Clock: clock.Now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	a.Observe(ep, 429, vercel.RateLimit{}, &vercel.RateLimitError{RetryAfter: 45 * time.Second})
	want := clock.Now().Add(45 * time.Second).UnixNano()

	// The watch brings the pause to b's cache without b asking.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, ok := stores[1].Cached(b.key(ep)); ok && st.PausedUntil == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pause never reached the other process")
		}
		time.Sleep(5 * time.Millisecond) // polling a cache with a deadline
	}
	var slept time.Duration
	b.sleep = func(ctx context.Context, d time.Duration) error { slept += d; clock.Advance(d); return nil }
	if err := b.Wait(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	if slept != 45*time.Second {
		t.Fatalf("other process waited %v, want the 45 s pause", slept)
	}
}

// What the API says about resets reaches the bucket exactly, whatever its
// form: limit.reset in seconds or milliseconds, Retry-After as a date.
func TestResetFormsThroughTheClient(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	resetAt := clock.Now().Add(37 * time.Second)
	tests := []struct {
		name   string
		header map[string]string
		body   string
	}{
		{"reset in seconds", nil, fmt.Sprintf(`{"error":{"code":"rate_limited","message":"slow down","limit":{"remaining":0,"reset":%d,"total":5}}}`, resetAt.Unix())},
		{"reset in milliseconds", nil, fmt.Sprintf(`{"error":{"code":"rate_limited","message":"slow down","limit":{"remaining":0,"reset":%d,"total":5}}}`, resetAt.UnixMilli())},
		{"retry-after date", map[string]string{"Retry-After": resetAt.UTC().Format(http.TimeFormat)}, `{"error":{"code":"rate_limited","message":"slow down"}}`},
		{"retry-after seconds", map[string]string{"Retry-After": "37"}, `{"error":{"code":"rate_limited","message":"slow down"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock() // each its own, at the same start: resetAt holds for every one
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// The client measures resets from the answer's Date.
				w.Header().Set("Date", clock.Now().UTC().Format(http.TimeFormat))
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			bg, err := New(NewMemoryStore(), Config{
				Limits: map[vercel.Endpoint]Limit{vercel.EndpointCreateProject: {Requests: 100, Window: time.Minute}},
				Clock:  clock.Now, Logger: quiet(),
			})
			if err != nil {
				t.Fatal(err)
			}
			var slept time.Duration
			bg.sleep = func(ctx context.Context, d time.Duration) error {
				slept += max(d, 0)
				clock.Advance(max(d, 0))
				return nil
			}
			api, err := vercel.New(vercel.WithBaseURL(srv.URL), vercel.WithToken("t"), vercel.WithLimiter(bg), vercel.WithClock(clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := api.CreateProject(context.Background(), vercel.CreateProjectRequest{Name: "x"}); err == nil {
				t.Fatal("no error from a 429")
			}
			slept = 0
			if err := bg.Wait(context.Background(), vercel.EndpointCreateProject); err != nil {
				t.Fatal(err)
			}
			if slept != 37*time.Second {
				t.Fatalf("waited %v, want 37 s until the announced reset", slept)
			}
		})
	}
}
