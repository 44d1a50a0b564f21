package budget

import (
	"math"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func TestUtilization(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		calls  int
		limit  int
		window time.Duration
		span   time.Duration
		want   float64
	}{
		{"exactly the limit", 300, 20, 10 * time.Second, 150 * time.Second, 1},
		{"half the limit", 150, 20, 10 * time.Second, 150 * time.Second, 0.5},
		{"even pacing at the limit, first to last call", 300, 20, 10 * time.Second, 149500 * time.Millisecond, 300.0 / 299},
		{"one-minute window", 97, 100, time.Minute, time.Minute, 0.97},
		{"no span", 5, 20, 10 * time.Second, 0, 0},
		{"no limit", 5, 0, 10 * time.Second, time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := utilization(tt.calls, tt.limit, tt.window, tt.span); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("utilization(%d, %d, %s, %s) = %v, want %v", tt.calls, tt.limit, tt.window, tt.span, got, tt.want)
			}
		})
	}
}

func TestPercentilesNearestRank(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Second)
	}
	got := percentilesOf(ds)
	if got.Count != 100 || got.P50 != 50 || got.P99 != 99 {
		t.Errorf("percentilesOf(1..100 s) = %+v, want count 100, p50 50, p99 99", got)
	}
	if got := percentilesOf([]time.Duration{3 * time.Second}); got.P50 != 3 || got.P99 != 3 {
		t.Errorf("one sample: %+v", got)
	}
	if got := percentilesOf(nil); got != (percentiles{}) {
		t.Errorf("no samples: %+v", got)
	}
}

func TestRateLimitFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want bool
	}{
		{"rate_limited_gave_up", true},
		{"rate_limited", true},
		{"plan_limit", true},
		{"BUILD_FAILED", false},
		{"retries_exhausted", false},
	}
	for _, tt := range tests {
		if got := rateLimitFailure(&jobs.EventError{Code: tt.code}); got != tt.want {
			t.Errorf("rateLimitFailure(%q) = %v, want %v", tt.code, got, tt.want)
		}
	}
	if rateLimitFailure(nil) {
		t.Error("rateLimitFailure(nil) = true")
	}
}

func TestBindingWindow(t *testing.T) {
	l := budget.Limit{Requests: 10, Window: 2 * time.Second, Caps: []budget.Cap{{Requests: 40, Window: 20 * time.Second}, {Requests: 100, Window: time.Minute}}}
	if got := binding(l); got != (budget.Cap{Requests: 100, Window: time.Minute}) {
		t.Fatalf("binding = %v, want 100/1m", got)
	}
	if got := binding(budget.Limit{Requests: 20, Window: 10 * time.Second}); got != (budget.Cap{Requests: 20, Window: 10 * time.Second}) {
		t.Fatalf("binding of one window = %v", got)
	}
}

func TestPerWindow(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	var secs []vercelsim.SecondCount
	for s := range 25 { // one call a second for 25 s
		secs = append(secs, vercelsim.SecondCount{Second: t0.Add(time.Duration(s) * time.Second), Count: 1})
	}
	got := perWindow(secs, budget.Cap{Requests: 10, Window: 10 * time.Second})
	if len(got) != 2 || got[0] != 1 || got[1] != 1 {
		t.Fatalf("perWindow = %v, want two whole windows at 100 %%", got)
	}
}
