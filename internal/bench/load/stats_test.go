package load

import (
	"math"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		count int
		d     time.Duration
		want  float64
	}{
		{2000, 4 * time.Second, 500},
		{1, 250 * time.Millisecond, 4},
		{0, time.Second, 0},
		{10, 0, 0},
		{10, -time.Second, 0},
	}
	for _, tt := range tests {
		if got := rate(tt.count, tt.d); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("rate(%d, %s) = %v, want %v", tt.count, tt.d, got, tt.want)
		}
	}
	if got := ratio(3, 4); got != 0.75 {
		t.Errorf("ratio(3, 4) = %v", got)
	}
	if got := ratio(3, 0); got != 0 {
		t.Errorf("ratio(3, 0) = %v, want 0", got)
	}
}

func TestSpreadOf(t *testing.T) {
	t.Parallel()
	s := spreadOf([]float64{30, 10, 20})
	if s.Median != 20 || s.Min != 10 || s.Max != 30 {
		t.Errorf("spreadOf(30, 10, 20) = %+v", s)
	}
	if s.Runs[0] != 30 || s.Runs[2] != 20 {
		t.Errorf("runs not kept in order: %v", s.Runs)
	}
	if got := s.relSpread(); got != 1 {
		t.Errorf("relSpread = %v, want 1", got)
	}
	if s := spreadOf([]float64{4, 1, 3, 2}); s.Median != 2.5 {
		t.Errorf("even count: median %v, want 2.5", s.Median)
	}
	if s := spreadOf(nil); s.Median != 0 || s.relSpread() != 0 {
		t.Errorf("no runs: %+v", s)
	}
}

func TestLatencyNearestRank(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 200; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := latencyOf(ds)
	want := latency{Count: 200, P50: 100, P99: 198, Min: 1, Max: 200}
	if got != want {
		t.Errorf("latencyOf(1..200 ms) = %+v, want %+v", got, want)
	}
	if got := latencyOf([]time.Duration{-2 * time.Millisecond, 5 * time.Millisecond}); got.P50 != -2 || got.P99 != 5 || got.Min != -2 {
		t.Errorf("negative samples: %+v", got)
	}
	if got := latencyOf([]time.Duration{7 * time.Millisecond}); got.P50 != 7 || got.P99 != 7 {
		t.Errorf("one sample: %+v", got)
	}
	if got := latencyOf(nil); got != (latency{}) {
		t.Errorf("no samples: %+v", got)
	}
}

func TestWorkerSlots(t *testing.T) {
	t.Parallel()
	if got := workerSlots(250, 2*time.Second, 1.5, 64); got != 750 {
		t.Errorf("workerSlots(250/s, 2 s, ×1.5) = %d, want 750", got)
	}
	if got := workerSlots(5, time.Second, 2, 64); got != 64 {
		t.Errorf("below the floor: %d, want 64", got)
	}
}

func TestArrivalOffsets(t *testing.T) {
	t.Parallel()
	got := arrivalOffsets(4, time.Second)
	want := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond}
	if len(got) != len(want) {
		t.Fatalf("arrivalOffsets(4/s, 1 s) = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("arrivalOffsets(4/s, 1 s) = %v, want %v", got, want)
		}
	}
	if n := len(arrivalOffsets(300, 15*time.Second)); n != 4500 {
		t.Errorf("300/s over 15 s: %d arrivals, want 4500", n)
	}
	if arrivalOffsets(0, time.Second) != nil || arrivalOffsets(10, 0) != nil {
		t.Error("no rate or no duration should give no arrivals")
	}
}

func TestMemBasePath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/tmp/p/queued-mem.pprof": "/tmp/p/queued-mem-base.pprof",
		"heap":                    "heap-base",
		"dir.d/heap":              "dir.d/heap-base",
	} {
		if got := memBasePath(in); got != want {
			t.Errorf("memBasePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOthersShare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		machine, self, wall time.Duration
		cpus                int
		want                float64
	}{
		{3 * time.Second, time.Second, 2 * time.Second, 2, 0.5},
		{time.Second, time.Second, time.Second, 2, 0},
		{900 * time.Millisecond, time.Second, time.Second, 2, 0}, // tick rounding: never negative
		{time.Second, 0, 0, 2, 0},
	}
	for _, tt := range tests {
		if got := othersShare(tt.machine, tt.self, tt.wall, tt.cpus); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("othersShare(%s, %s, %s, %d) = %v, want %v", tt.machine, tt.self, tt.wall, tt.cpus, got, tt.want)
		}
	}
}
