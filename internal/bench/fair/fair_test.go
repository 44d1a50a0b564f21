package fair

import (
	"io"
	"math"
	"testing"
)

func TestJain(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3, 3, 3}, 1},
		{[]float64{9, 0, 0}, 1.0 / 3},
		{[]float64{0, 0}, 1},
		// One tenant with half of ten tenants' deploys, the rest equal.
		{[]float64{9, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 18.0 * 18 / (10 * 90)},
	} {
		if got := jain(tc.xs); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("jain(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"-tenants", "1"}, {"-skew-n", "5"}, {"-noisy-limits", "nope=1/s"}, {"-burst", "0"}} {
		if code := Main(args, io.Discard, io.Discard); code != 2 {
			t.Errorf("Main(%v) = %d, want 2", args, code)
		}
	}
}
