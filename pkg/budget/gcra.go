package budget

import (
	"math"
	"time"
)

// State is one bucket as stored and shared. Times are Unix nanoseconds:
// exact, compact in JSON, and comparable across processes (their clocks
// are assumed NTP-synchronised; skew only shifts slots by the skew).
type State struct {
	// TAT is the theoretical arrival time of the next call: the bucket is
	// empty until TAT - tolerance.
	TAT int64 `json:"tat"`
	// PausedUntil holds every call back until then (429, 402, exhausted
	// remaining count).
	PausedUntil int64 `json:"pausedUntil,omitempty"`
	// Limit is the requests per window learned from X-RateLimit-Limit;
	// 0 means the configured limit applies.
	Limit int `json:"limit,omitempty"`
}

// rule is a bucket's arithmetic: one call per interval, and up to
// tolerance early after an idle spell (the burst).
type rule struct {
	interval  int64
	tolerance int64
	burst     int
}

func newRule(l Limit, learned int, headroom float64) rule {
	requests := l.Requests
	if learned > 0 {
		requests = learned
	}
	burst := max(l.Burst, 1)
	interval := int64(math.Ceil(float64(l.Window) / (float64(requests) * headroom)))
	return rule{interval: interval, tolerance: int64(burst-1) * interval, burst: burst}
}

// reserve takes the next slot at or after now and returns its time. The
// slot is the caller's whatever happens next, so reservations are served
// in the order they were made.
func reserve(s *State, now int64, r rule) int64 {
	start := max(now, s.PausedUntil)
	base := max(s.TAT, start)
	at := max(start, base-r.tolerance)
	s.TAT = base + r.interval
	return at
}

// pause holds the bucket back until until; pauses only ever lengthen.
func pause(s *State, until int64) bool {
	if until <= s.PausedUntil {
		return false
	}
	s.PausedUntil = until
	return true
}

// tokens is how many calls the bucket would grant back to back at now.
func tokens(s State, now int64, r rule) float64 {
	if now < s.PausedUntil {
		return 0
	}
	n := math.Floor(float64(now+r.tolerance+r.interval-s.TAT) / float64(r.interval))
	return min(max(n, 0), float64(r.burst))
}

func unixNano(t time.Time) int64 { return t.UnixNano() }
