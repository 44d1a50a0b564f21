package load

import (
	"math"
	"slices"
	"time"
)

// rate is count per second over d; 0 when d is not positive, so a run
// that measured nothing never divides by zero.
func rate(count int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(count) / d.Seconds()
}

// ratio is a ÷ b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// spread summarizes repeated measurements of one figure: machines here
// are shared and noisy, so every figure is reported with its range.
type spread struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Runs   []float64 `json:"runs"`
}

// spreadOf returns the median (the mean of the middle two for an even
// count), minimum and maximum of xs, keeping xs in run order.
func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return spread{Median: med, Min: s[0], Max: s[n-1], Runs: slices.Clone(xs)}
}

// relSpread is (max − min) ÷ median: how far apart the runs were.
func (s spread) relSpread() float64 {
	return ratio(s.Max-s.Min, s.Median)
}

// latency summarizes one latency sample, in milliseconds.
type latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Ms"`
	P99   float64 `json:"p99Ms"`
	Min   float64 `json:"minMs"`
	Max   float64 `json:"maxMs"`
}

// latencyOf returns nearest-rank percentiles: the smallest sample that at
// least p of the samples do not exceed. Samples may be negative (two
// clocks read on different goroutines), and are kept so.
func latencyOf(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return latency{
		Count: len(s),
		P50:   ms(nearestRank(s, 0.50)),
		P99:   ms(nearestRank(s, 0.99)),
		Min:   ms(s[0]),
		Max:   ms(s[len(s)-1]),
	}
}

// nearestRank is the p-quantile of sorted, by nearest rank.
func nearestRank(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// workerSlots is the concurrency an open-loop run at perSecond arrivals
// needs when each job holds a slot for about hold: Little's law, with
// headroom so that slots never become the bottleneck being measured, and
// never less than floor.
func workerSlots(perSecond float64, hold time.Duration, headroom float64, floor int) int {
	n := int(math.Ceil(perSecond * hold.Seconds() * headroom))
	return max(n, floor)
}

// arrivalOffsets returns the offsets from the start of an open-loop run
// at which each of its requests is due: evenly spaced at perSecond over d.
func arrivalOffsets(perSecond float64, d time.Duration) []time.Duration {
	if perSecond <= 0 || d <= 0 {
		return nil
	}
	n := int(math.Floor(perSecond * d.Seconds()))
	gap := float64(time.Second) / perSecond
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(float64(i) * gap)
	}
	return out
}

// othersShare is the share of the machine's CPU capacity over wall that
// other processes used: the machine's busy time minus this process's, ÷
// (wall × CPUs). The two clocks tick differently (the kernel's in 10 ms
// steps), so a quiet machine reads about 0, give or take a percent.
func othersShare(machine, self, wall time.Duration, cpus int) float64 {
	if wall <= 0 || cpus <= 0 {
		return 0
	}
	return max(float64(machine-self)/(float64(wall)*float64(cpus)), 0)
}
