package budget

import (
	"cmp"
	"slices"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// Bucket is one endpoint's budget as this process sees it now: the
// operations console shows them (Budget.Snapshot).
type Bucket struct {
	Endpoint vercel.Endpoint `json:"endpoint"`
	// Limit is the configured limit, written as BUDGET_LIMITS reads it;
	// Learned the requests per window the API announced instead
	// (X-RateLimit-Limit), 0 when none was.
	Limit   string `json:"limit"`
	Learned int    `json:"learned,omitempty"`
	// Tokens is how many calls would be granted back to back now, out of
	// Burst.
	Tokens float64 `json:"tokens"`
	Burst  int     `json:"burst"`
	// PausedUntil is set while the API asked for a pause (429, 402, a
	// spent remaining count); NextSlot while the next call's slot is
	// ahead of now (calls are booked ahead).
	PausedUntil time.Time `json:"pausedUntil,omitzero"`
	NextSlot    time.Time `json:"nextSlot,omitzero"`
	// Waiting counts this process's callers in the endpoint's line.
	Waiting int `json:"waiting"`
	// Windows are the longer windows (caps) counted at once, with what
	// each has spent.
	Windows []WindowUse `json:"windows,omitempty"`
}

// WindowUse is what one cap of a bucket has spent in its window.
type WindowUse struct {
	Window   string `json:"window"`
	Used     int    `json:"used"`
	Requests int    `json:"requests"`
}

// Snapshot returns every limited endpoint's bucket, by endpoint name,
// from the state this process last saw (a KVStore follows the fleet's
// writes): no round trip.
func (b *Budget) Snapshot() []Bucket {
	now := unixNano(b.now())
	out := make([]Bucket, 0, len(b.limits))
	for ep, l := range b.limits {
		st, _ := b.store.Cached(b.key(ep))
		r := newRule(l, st.Limit, b.cfg.Headroom)
		bk := Bucket{Endpoint: ep, Limit: l.String(), Learned: st.Limit, Tokens: tokens(st, now, r), Burst: r.burst}
		if st.PausedUntil > now {
			bk.PausedUntil = time.Unix(0, st.PausedUntil)
		}
		if next := st.TAT - r.tolerance; next > now {
			bk.NextSlot = time.Unix(0, next)
		}
		for i, used := range capUse(st, now, r) {
			bk.Windows = append(bk.Windows, WindowUse{Window: l.Caps[i].WindowString(), Used: used, Requests: l.Caps[i].Requests})
		}
		b.mu.Lock()
		ln := b.lines[ep]
		b.mu.Unlock()
		if ln != nil {
			ln.mu.Lock()
			bk.Waiting = ln.q.Len()
			ln.mu.Unlock()
		}
		out = append(out, bk)
	}
	slices.SortFunc(out, func(a, b Bucket) int { return cmp.Compare(a.Endpoint, b.Endpoint) })
	return out
}
