package budget

import (
	"math"
	"slices"
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
	// Caps counts the calls of each cap (Limit.Caps) in its window.
	Caps []CapCount `json:"caps,omitempty"`
}

// capSlots is how many slots a cap's window is counted in. A cap keeps
// one count per slot of Window/capSlots, so its state is a few hundred
// numbers at most however many calls it counts. The span a call is
// checked against is the window plus one to two slots: a call granted a
// whole slot (1/120 of the window) or more after the window's first
// call, so that the jitter between a grant and the call's arrival never
// puts one call too many into a window on the API's side, fixed or
// sliding; a cap that binds is used to about 98.8 % of its allowance.
const capSlots = 120

// CapCount is what a bucket has spent of one cap: Counts[i] calls were
// granted slots in the cap slot numbered First+i (slots are counted from
// the Unix epoch, Window/capSlots long).
type CapCount struct {
	// Window is the cap's window in nanoseconds: a count is kept only for
	// a cap of the same window, so a changed configuration starts afresh.
	Window int64 `json:"w"`
	First  int64 `json:"first"`
	Counts []int `json:"n,omitempty"`
}

// capRule is one cap's arithmetic.
type capRule struct {
	window   int64
	slot     int64
	requests int
}

func (c *CapCount) count(idx int64) int {
	i := idx - c.First
	if i < 0 || i >= int64(len(c.Counts)) {
		return 0
	}
	return c.Counts[i]
}

// forget drops the slots before oldest.
func (c *CapCount) forget(oldest int64) {
	if oldest <= c.First {
		return
	}
	if drop := oldest - c.First; drop < int64(len(c.Counts)) {
		c.Counts = c.Counts[drop:]
	} else {
		c.Counts = nil
	}
	c.First = oldest
}

func (c *CapCount) add(idx int64) {
	switch {
	case len(c.Counts) == 0:
		c.First = idx
	case idx < c.First: // written by a process whose clock runs ahead
		c.Counts = append(make([]int, c.First-idx), c.Counts...)
		c.First = idx
	}
	for int64(len(c.Counts)) <= idx-c.First {
		c.Counts = append(c.Counts, 0)
	}
	c.Counts[idx-c.First]++
}

// used is how many calls the span ending in slot idx holds: idx and the
// capSlots+1 slots before it.
func (c *CapCount) used(idx int64) int {
	n := 0
	for j := idx - capSlots - 1; j <= idx; j++ {
		n += c.count(j)
	}
	return n
}

// earliest is the first time at or after at when one more call fits the
// cap: at itself, or the start of the first later slot whose span holds
// fewer than the cap's requests.
func (r capRule) earliest(c *CapCount, at int64) int64 {
	idx := at / r.slot
	last := c.First + int64(len(c.Counts))
	for k := idx; k <= last+capSlots+1; k++ {
		if c.used(k) < r.requests {
			if k == idx {
				return at
			}
			return k * r.slot
		}
	}
	return (last + capSlots + 2) * r.slot
}

// capsFor returns s's counts lined up with the rules: the count kept for
// each rule's window, or an empty one.
func capsFor(have []CapCount, rules []capRule) []CapCount {
	out := make([]CapCount, len(rules))
	for i, r := range rules {
		out[i] = CapCount{Window: r.window}
		for _, c := range have {
			if c.Window == r.window {
				out[i] = c
				out[i].Counts = slices.Clone(c.Counts)
			}
		}
	}
	return out
}

// rule is a bucket's arithmetic: one call per interval, and up to
// tolerance early after an idle spell (the burst), within every cap.
type rule struct {
	interval  int64
	tolerance int64
	burst     int
	caps      []capRule
}

func newRule(l Limit, learned int, headroom float64) rule {
	requests := l.Requests
	if learned > 0 {
		requests = learned
	}
	burst := max(l.Burst, 1)
	interval := int64(math.Ceil(float64(l.Window) / (float64(requests) * headroom)))
	r := rule{interval: interval, tolerance: int64(burst-1) * interval, burst: burst}
	// A cap's count is exact, without headroom: the span it checks is
	// already longer than its window.
	for _, c := range l.Caps {
		w := int64(c.Window)
		r.caps = append(r.caps, capRule{window: w, slot: max(w/capSlots, 1), requests: c.Requests})
	}
	return r
}

// reserve takes the next slot at or after now and returns its time. The
// slot is the caller's whatever happens next, so reservations are served
// in the order they were made. When a cap is spent at that slot, nothing
// is reserved: ok is false and at is when the cap has room again, at
// which time the caller asks again (a slot reserved hours ahead would be
// lost with its caller, and would hold the cap against everyone else).
func reserve(s *State, now int64, r rule) (at int64, ok bool) {
	start := max(now, s.PausedUntil)
	base := max(s.TAT, start)
	at = max(start, base-r.tolerance)
	if len(r.caps) > 0 {
		s.Caps = capsFor(s.Caps, r.caps)
		for i, c := range r.caps {
			s.Caps[i].forget(now/c.slot - capSlots - 1)
		}
		for i, c := range r.caps {
			if free := c.earliest(&s.Caps[i], at); free > at {
				return free, false
			}
		}
		for i, c := range r.caps {
			s.Caps[i].add(at / c.slot)
		}
	}
	s.TAT = base + r.interval
	return at, true
}

// capUse is how many calls each cap holds in the span ending at now.
func capUse(s State, now int64, r rule) []int {
	caps := capsFor(s.Caps, r.caps)
	out := make([]int, len(r.caps))
	for i, c := range r.caps {
		out[i] = caps[i].used(now / c.slot)
	}
	return out
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
