package budget

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// fakeClock is a clock that only moves when a test (or a fake sleep)
// moves it, so no test waits for real time.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type bundle struct {
	clock  *fakeClock
	budget *Budget
	store  *MemoryStore
	slept  []time.Duration
	// onSleep runs during a sleep, before the clock moves: what happens
	// "while the caller waits".
	onSleep func()
}

func setup(t *testing.T, limits map[vercel.Endpoint]Limit) *bundle {
	t.Helper()
	b := &bundle{clock: newFakeClock(), store: NewMemoryStore()}
	bg, err := New(b.store, Config{Limits: limits, Headroom: 1, Clock: b.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	bg.sleep = func(ctx context.Context, d time.Duration) error {
		b.slept = append(b.slept, d)
		if f := b.onSleep; f != nil {
			b.onSleep = nil
			f()
		}
		if d > 0 {
			b.clock.Advance(d)
		}
		return ctx.Err()
	}
	b.budget = bg
	return b
}

const ep = vercel.EndpointCreateDeployment

// waits calls Wait n times and returns the offset from start of each grant.
func (b *bundle) waits(t *testing.T, n int) []time.Duration {
	t.Helper()
	start := b.clock.Now()
	var out []time.Duration
	for range n {
		if err := b.budget.Wait(context.Background(), ep); err != nil {
			t.Fatal(err)
		}
		out = append(out, b.clock.Now().Sub(start))
	}
	return out
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBurstThenSteadyRefill(t *testing.T) {
	t.Parallel()
	b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 10, Window: time.Second, Burst: 3}})
	ms := time.Millisecond
	got := b.waits(t, 6)
	want := []time.Duration{0, 0, 0, 100 * ms, 200 * ms, 300 * ms}
	if !equalDurations(got, want) {
		t.Fatalf("grants %v, want %v", got, want)
	}
	// After an idle second the burst is back.
	b.clock.Advance(time.Second)
	got = b.waits(t, 4)
	want = []time.Duration{0, 0, 0, 100 * ms}
	if !equalDurations(got, want) {
		t.Fatalf("after idle: grants %v, want %v", got, want)
	}
}

func TestHeadroomSpreadsCallsBelowTheLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 20, Window: 10 * time.Second}})
	b.budget.cfg.Headroom = 0.97
	got := b.waits(t, 21)
	// 20 calls must not fit in any 10 s window: the 21st comes after 10 s.
	if got[20] <= 10*time.Second {
		t.Fatalf("21st call at %v: a fixed 10 s window would see 21 calls", got[20])
	}
	if limit := 10309*time.Millisecond + time.Millisecond; got[20] > limit { // 10 s / 0.97
		t.Fatalf("21st call at %v, after %v: headroom 0.97 should cost 3 %%, no more", got[20], limit)
	}
}

func TestUnlimitedEndpointNeverWaits(t *testing.T) {
	t.Parallel()
	b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 1, Window: time.Hour}})
	for range 5 {
		if err := b.budget.Wait(context.Background(), vercel.EndpointGetProject); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.slept) != 0 {
		t.Fatalf("slept %v for an unlimited endpoint", b.slept)
	}
}

func TestRateLimitPausesUntilReset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want time.Duration
	}{
		{"retry-after", &vercel.RateLimitError{APIError: vercel.APIError{StatusCode: 429}, RetryAfter: 30 * time.Second}, 30 * time.Second},
		{"reset only", &vercel.RateLimitError{APIError: vercel.APIError{StatusCode: 429}}, 42 * time.Second},
		{"402 plan cap", &vercel.PlanLimitError{APIError: vercel.APIError{StatusCode: 402}, RetryAfter: 5 * time.Minute}, 5 * time.Minute},
		{"nothing announced", &vercel.RateLimitError{APIError: vercel.APIError{StatusCode: 429}}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 100, Window: time.Minute}})
			if tt.name == "reset only" {
				var rle *vercel.RateLimitError
				errors.As(tt.err, &rle)
				rle.Reset = b.clock.Now().Add(42 * time.Second)
			}
			b.budget.Observe(ep, 429, vercel.RateLimit{}, tt.err)
			got := b.waits(t, 1)[0]
			if got != tt.want {
				t.Fatalf("next call after %v, want %v", got, tt.want)
			}
			// Other endpoints go on.
			if err := b.budget.Wait(context.Background(), vercel.EndpointCreateProject); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAbsurdRetryAfterIsCapped(t *testing.T) {
	t.Parallel()
	b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 100, Window: time.Minute}})
	b.budget.cfg.MaxPause = 10 * time.Minute
	b.budget.Observe(ep, 429, vercel.RateLimit{}, &vercel.RateLimitError{RetryAfter: 6 * time.Hour})
	if got := b.waits(t, 1)[0]; got != 10*time.Minute {
		t.Fatalf("paused %v, want the 10 min cap", got)
	}
}

func TestPauseDuringWaitVoidsTheSlot(t *testing.T) {
	t.Parallel()
	b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 1, Window: time.Second}})
	b.waits(t, 1) // the bucket is now empty for a second
	b.onSleep = func() {
		// Another caller hits a 429 while this one sleeps toward its slot.
		b.budget.Observe(ep, 429, vercel.RateLimit{}, &vercel.RateLimitError{RetryAfter: 20 * time.Second})
	}
	start := b.clock.Now()
	if err := b.budget.Wait(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	if got := b.clock.Now().Sub(start); got != 20*time.Second {
		t.Fatalf("granted after %v, want after the 20 s pause; slept %v", got, b.slept)
	}
}

func TestHeaderCorrections(t *testing.T) {
	t.Parallel()
	t.Run("limit learned", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 10, Window: time.Second}})
		b.budget.Observe(ep, 200, vercel.RateLimit{Limit: 2, Remaining: 1, Known: true, Reset: b.clock.Now().Add(time.Second)}, nil)
		got := b.waits(t, 3)
		want := []time.Duration{0, 500 * time.Millisecond, time.Second}
		if !equalDurations(got, want) {
			t.Fatalf("grants %v, want the learned 2/s: %v", got, want)
		}
	})
	t.Run("a 402's daily total is not a rate", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 10, Window: time.Second}})
		b.budget.cfg.MaxPause = time.Second
		day := b.clock.Now().Add(24 * time.Hour)
		b.budget.Observe(ep, 402, vercel.RateLimit{Limit: 100, Remaining: 0, Known: true, Reset: day},
			&vercel.PlanLimitError{APIError: vercel.APIError{StatusCode: 402}, Reset: day, Total: 100})
		got := b.waits(t, 3)
		want := []time.Duration{time.Second, time.Second + 100*time.Millisecond, time.Second + 200*time.Millisecond}
		if !equalDurations(got, want) {
			t.Fatalf("grants %v, want the capped pause then the configured 10/s: %v", got, want)
		}
	})
	t.Run("remaining exhausted far from reset", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 10, Window: 10 * time.Second}})
		// Someone else spent this window: nothing left for 8 s.
		b.budget.Observe(ep, 200, vercel.RateLimit{Limit: 10, Remaining: 0, Known: true, Reset: b.clock.Now().Add(8 * time.Second)}, nil)
		if got := b.waits(t, 1)[0]; got != 8*time.Second {
			t.Fatalf("next call after %v, want 8 s", got)
		}
	})
	t.Run("remaining exhausted at the next slot anyway", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 10, Window: 10 * time.Second}})
		b.waits(t, 1) // next slot in 1 s
		// The reset, in whole seconds, is no later than the slot plus its
		// resolution: no pause, no lost time.
		b.budget.Observe(ep, 200, vercel.RateLimit{Limit: 10, Remaining: 0, Known: true, Reset: b.clock.Now().Add(1500 * time.Millisecond)}, nil)
		if got := b.waits(t, 1)[0]; got != time.Second {
			t.Fatalf("next call after %v, want the regular 1 s", got)
		}
	})
}

func TestReservationsAreFirstComeFirstServed(t *testing.T) {
	t.Parallel()
	s := State{}
	r := newRule(Limit{Requests: 5, Window: time.Second}, 0, 1)
	var last int64 = -1
	for i := range 50 {
		// Callers arrive faster than the rate: each later caller's slot
		// is strictly after every earlier one's.
		at, _ := reserve(&s, int64(i)*int64(time.Millisecond), r)
		if at <= last {
			t.Fatalf("caller %d got slot %d, not after %d", i, at, last)
		}
		last = at
	}
}

func TestWaitHonoursContext(t *testing.T) {
	t.Parallel()
	b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 1, Window: time.Hour}})
	b.waits(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.budget.Wait(ctx, ep); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseLimits(t *testing.T) {
	t.Parallel()
	got, err := ParseLimits("all=50/10s, deployments.create=20/10s,projects.create=5/s")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[ep], Limit{Requests: 20, Window: 10 * time.Second}) ||
		!reflect.DeepEqual(got[vercel.EndpointCreateProject], Limit{Requests: 5, Window: time.Second}) ||
		!reflect.DeepEqual(got[vercel.EndpointGetDeployment], Limit{Requests: 50, Window: 10 * time.Second}) {
		t.Fatalf("parsed %v", got)
	}
	// Several windows, in any order: the shortest paces, the rest cap.
	got, err = ParseLimits("deployments.create=6000/24h+120/5m+450/1h")
	if err != nil {
		t.Fatal(err)
	}
	want := Limit{Requests: 120, Window: 5 * time.Minute, Caps: []Cap{{450, time.Hour}, {6000, 24 * time.Hour}}}
	if !reflect.DeepEqual(got[ep], want) {
		t.Fatalf("parsed %+v, want %+v", got[ep], want)
	}
	if s := got[ep].String(); s != "120/5m+450/1h+6000/24h" {
		t.Errorf("String() = %q", s)
	}
	for _, bad := range []string{"deployments.create", "nope=1/s", "deployments.create=0/s", "deployments.create=5/fortnight",
		"deployments.create=x/1s", "deployments.create=5/1m+", "deployments.create=5/1m+6/1m", "deployments.create=5/1m+0/1h"} {
		if _, err := ParseLimits(bad); err == nil {
			t.Errorf("ParseLimits(%q) accepted", bad)
		}
	}
}

func TestCapParksUntilItsWindowHasRoom(t *testing.T) {
	t.Parallel()
	// Paced at 10 a second, capped at 5 an hour: five calls go at the
	// pace, the sixth is parked until the first has left the hour.
	b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 10, Window: time.Second, Caps: []Cap{{5, time.Hour}}}})
	start := b.clock.Now()
	b.waits(t, 5)
	if el := b.clock.Now().Sub(start); el > time.Second {
		t.Fatalf("five calls within the cap took %v", el)
	}
	b.waits(t, 1)
	el := b.clock.Now().Sub(start)
	slot := time.Hour / capSlots
	if el < time.Hour+slot || el > time.Hour+2*slot {
		t.Fatalf("the call past the cap went after %v, want an hour and one to two slots of %v", el, slot)
	}
}

func TestCapIsCountedPerSlidingSpan(t *testing.T) {
	t.Parallel()
	// No span of an hour (plus one slot) may hold more than the cap,
	// whatever the pace allows: count calls over a simulated day.
	const perHour = 30
	l := Limit{Requests: 1, Window: 10 * time.Second, Caps: []Cap{{perHour, time.Hour}}}
	r := newRule(l, 0, 1)
	var s State
	var grants []int64
	now := int64(1_800_000_000) * int64(time.Second)
	end := now + int64(24*time.Hour)
	for now < end {
		at, ok := reserve(&s, now, r)
		if ok {
			grants = append(grants, at)
			now = at + 1
			continue
		}
		if at <= now {
			t.Fatalf("parked until %d, not after now %d", at, now)
		}
		now = at
	}
	for i := range grants {
		j := i
		for j < len(grants) && grants[j] < grants[i]+int64(time.Hour) {
			j++
		}
		if j-i > perHour {
			t.Fatalf("%d calls within the hour from grant %d", j-i, i)
		}
	}
	// A cap that binds is used: at least 98 % of 24 hours × 30.
	if min := 98 * 24 * perHour / 100; len(grants) < min {
		t.Fatalf("%d calls in a day, want at least %d", len(grants), min)
	}
	if testing.Verbose() {
		t.Logf("%d calls in a day under a cap of %d an hour: %.1f %%", len(grants), perHour, 100*float64(len(grants))/(24*perHour))
	}
	if n := len(s.Caps[0].Counts); n > 2*capSlots+2 {
		t.Fatalf("the cap keeps %d slots", n)
	}
}

func TestCapCountsSurviveAnotherConfiguration(t *testing.T) {
	t.Parallel()
	var s State
	hour := newRule(Limit{Requests: 100, Window: time.Second, Caps: []Cap{{2, time.Hour}}}, 0, 1)
	now := int64(time.Hour) * 500_000
	for range 2 {
		if _, ok := reserve(&s, now, hour); !ok {
			t.Fatal("refused within the cap")
		}
	}
	if _, ok := reserve(&s, now, hour); ok {
		t.Fatal("granted past the cap")
	}
	// A worker configured with a daily cap in place of the hourly one
	// keeps no stale hourly count; one with both keeps the hourly count.
	day := newRule(Limit{Requests: 100, Window: time.Second, Caps: []Cap{{10, 24 * time.Hour}}}, 0, 1)
	if _, ok := reserve(&s, now, day); !ok {
		t.Fatal("the daily cap refused its first call")
	}
	both := newRule(Limit{Requests: 100, Window: time.Second, Caps: []Cap{{2, time.Hour}, {10, 24 * time.Hour}}}, 0, 1)
	if _, ok := reserve(&s, now, both); !ok {
		t.Fatal("a fresh hourly count refused")
	}
	if _, ok := reserve(&s, now, both); !ok {
		t.Fatal("second call refused")
	}
	if _, ok := reserve(&s, now, both); ok {
		t.Fatal("granted past the hourly cap")
	}
}

func TestPlanLimits(t *testing.T) {
	t.Parallel()
	for _, p := range Plans() {
		limits := PlanLimits(p)
		for _, e := range vercel.Endpoints() {
			l, ok := limits[e]
			if !ok {
				t.Errorf("%s: no limit for %s", p, e)
				continue
			}
			if err := l.valid(); err != nil {
				t.Errorf("%s: %s: %v", p, e, err)
			}
		}
	}
	for plan, want := range map[Plan]string{PlanHobby: "60/5m+100/1h+100/24h", PlanPro: "120/5m+450/1h+6000/24h", PlanEnterprise: "300/5m+1800/1h+24000/24h"} {
		if got := PlanLimits(plan)[ep].String(); got != want {
			t.Errorf("%s deployments: %s, want %s", plan, got, want)
		}
	}
	if p, err := ParsePlan(" Free "); err != nil || p != PlanHobby {
		t.Errorf("ParsePlan(free) = %q, %v", p, err)
	}
	if _, err := ParsePlan("gold"); err == nil {
		t.Error("ParsePlan(gold) accepted")
	}
}
