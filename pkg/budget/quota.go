package budget

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Quotas count each tenant's deploys against the quota its operator set
// (deploys per day, say), for the whole fleet: a tenant's count lives in
// the same Store as the API's buckets, under a key of its own, and is
// kept per slot exactly like a Limit's caps, so a quota of 100/24h admits
// at most 100 deploys in any 24 hours, whichever workers run them.
//
// A quota is a tenant's allowance, not the API's: it is spent when a
// deploy is admitted (once per request, however often it is retried), and
// never paces anything; a spent quota only says until when the tenant
// must wait.
type Quotas struct {
	store Store
	now   func() time.Time
	caps  map[string][]Cap
	rules map[string][]capRule
}

// QuotaKeyPrefix starts the store key of every tenant's quota count:
// "tenant-quota.<tenant>". No Vercel team id starts so, so the counts
// never meet the API's buckets ("<team>.<endpoint>").
const QuotaKeyPrefix = "tenant-quota."

// NewQuotas returns the counters of the quotas given per tenant (each a
// set of windows, all enforced at once). now defaults to time.Now.
func NewQuotas(store Store, quotas map[string][]Cap, now func() time.Time) (*Quotas, error) {
	if store == nil {
		return nil, errors.New("budget: NewQuotas needs a store")
	}
	if now == nil {
		now = time.Now
	}
	q := &Quotas{store: store, now: now, caps: map[string][]Cap{}, rules: map[string][]capRule{}}
	for tenant, caps := range quotas {
		if len(caps) == 0 {
			continue
		}
		for _, c := range caps {
			if c.Requests <= 0 || c.Window <= 0 {
				return nil, fmt.Errorf("budget: quota %s of tenant %q needs positive deploys and window", c, tenant)
			}
		}
		caps = slices.Clone(caps)
		slices.SortFunc(caps, byWindow)
		q.caps[tenant] = caps
		for _, c := range caps {
			w := int64(c.Window)
			q.rules[tenant] = append(q.rules[tenant], capRule{window: w, slot: max(w/capSlots, 1), requests: c.Requests})
		}
	}
	return q, nil
}

// Limited reports whether tenant has a quota.
func (q *Quotas) Limited(tenant string) bool { return q != nil && len(q.rules[tenant]) > 0 }

// Tenants returns the tenants with a quota, sorted.
func (q *Quotas) Tenants() []string {
	if q == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(q.caps))
}

// Quota returns tenant's windows (nil when it has none).
func (q *Quotas) Quota(tenant string) []Cap { return slices.Clone(q.caps[tenant]) }

// Admission is the answer to Take.
type Admission struct {
	// OK is true when the deploy was counted.
	OK bool
	// At is the time the deploy was counted at (Return takes it back).
	At time.Time
	// Until is, when OK is false, the first time the quota has room.
	Until time.Time
	// Use is each window's count after the answer, in Quota's order.
	Use []int
}

// Take counts one deploy of tenant if every window of its quota has room
// now. A tenant without a quota is always admitted, and nothing is
// stored for it.
func (q *Quotas) Take(ctx context.Context, tenant string) (Admission, error) {
	rules := q.rules[tenant]
	if len(rules) == 0 {
		return Admission{OK: true}, nil
	}
	now := unixNano(q.now())
	var a Admission
	st, err := q.store.Update(ctx, QuotaKeyPrefix+tenant, func(s *State) {
		a = Admission{}
		s.Caps = capsFor(s.Caps, rules)
		free := now
		for i, r := range rules {
			s.Caps[i].forget(now/r.slot - capSlots - 1)
			free = max(free, r.earliest(&s.Caps[i], now))
		}
		if free > now {
			a.Until = time.Unix(0, free)
			return
		}
		for i, r := range rules {
			s.Caps[i].add(now / r.slot)
		}
		a.OK, a.At = true, time.Unix(0, now)
	})
	if err != nil {
		return Admission{}, fmt.Errorf("quota of tenant %s: %w", tenant, err)
	}
	a.Use = use(st, now, rules)
	return a, nil
}

// Return takes back a deploy counted at at (one admitted that did not
// run after all: another message of its request had started it).
func (q *Quotas) Return(ctx context.Context, tenant string, at time.Time) error {
	rules := q.rules[tenant]
	if len(rules) == 0 || at.IsZero() {
		return nil
	}
	t := unixNano(at)
	_, err := q.store.Update(ctx, QuotaKeyPrefix+tenant, func(s *State) {
		s.Caps = capsFor(s.Caps, rules)
		for i, r := range rules {
			s.Caps[i].remove(t / r.slot)
		}
	})
	if err != nil {
		return fmt.Errorf("quota of tenant %s: %w", tenant, err)
	}
	return nil
}

// Use returns each window's count for tenant as this process last saw
// it (no round trip), in Quota's order, and the first time the quota has
// room: now, or later when a window is spent.
func (q *Quotas) Use(tenant string) (used []int, free time.Time) {
	rules := q.rules[tenant]
	now := unixNano(q.now())
	st, _ := q.store.Cached(QuotaKeyPrefix + tenant)
	caps := capsFor(st.Caps, rules)
	f := now
	for i, r := range rules {
		f = max(f, r.earliest(&caps[i], now))
	}
	return use(st, now, rules), time.Unix(0, f)
}

func use(s State, now int64, rules []capRule) []int {
	caps := capsFor(s.Caps, rules)
	out := make([]int, len(rules))
	for i, r := range rules {
		out[i] = caps[i].used(now / r.slot)
	}
	return out
}

// remove takes one count off slot idx, if it has any.
func (c *CapCount) remove(idx int64) {
	if i := idx - c.First; i >= 0 && i < int64(len(c.Counts)) && c.Counts[i] > 0 {
		c.Counts[i]--
	}
}

// ParseQuota reads a tenant's quota: "N/window", or several windows
// joined by "+" ("20/1h+100/24h"), every one enforced at once.
func ParseQuota(s string) ([]Cap, error) { return parseWindows(s) }

// FormatQuota writes a quota as ParseQuota reads it.
func FormatQuota(caps []Cap) string {
	parts := make([]string, len(caps))
	for i, c := range caps {
		parts[i] = c.String()
	}
	return strings.Join(parts, "+")
}
