package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/internal/fair"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel"
)

// Config configures a Budget.
type Config struct {
	// Team keys the buckets: Vercel limits each team (or personal account)
	// on its own. Defaults to "personal".
	Team string
	// Limits per endpoint class; endpoints absent are not limited.
	// Defaults to DefaultLimits().
	Limits map[vercel.Endpoint]Limit
	// Headroom is the fraction of each limit the budget spends, leaving
	// room for the jitter between a granted slot and the call reaching the
	// API. Defaults to 0.97.
	Headroom float64
	// MaxPause caps one pause learned from the API: a Retry-After of hours
	// is capped, logged and counted, and after the cap one call probes
	// again. Defaults to 15 min.
	MaxPause time.Duration
	// Clock tells the time. Defaults to time.Now.
	Clock func() time.Time
	// Logger receives pause notices. Defaults to slog.Default().
	Logger *slog.Logger
	// Metrics records waits, tokens, 429s and pauses. Defaults to none.
	Metrics *metrics.Metrics
}

// Budget is a vercel.Limiter spending shared per-endpoint buckets.
type Budget struct {
	store  Store
	cfg    Config
	limits map[vercel.Endpoint]Limit
	log    *slog.Logger
	m      *metrics.Metrics
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error

	mu sync.Mutex
	// lines are the callers waiting, per endpoint.
	lines map[vercel.Endpoint]*line
	// parked is, per endpoint, until when this process last saw a cap
	// spent: a park is logged once, not once per waiter.
	parked map[vercel.Endpoint]int64
}

var _ vercel.Limiter = (*Budget)(nil)

// New returns a budget keeping its buckets in store.
func New(store Store, cfg Config) (*Budget, error) {
	if store == nil {
		return nil, errors.New("budget: New needs a Store")
	}
	if cfg.Team == "" {
		cfg.Team = "personal"
	}
	if cfg.Limits == nil {
		cfg.Limits = DefaultLimits()
	}
	if cfg.Headroom == 0 {
		cfg.Headroom = 0.97
	}
	if cfg.Headroom <= 0 || cfg.Headroom > 1 {
		return nil, fmt.Errorf("budget: Headroom %v is not within (0, 1]", cfg.Headroom)
	}
	if cfg.MaxPause <= 0 {
		cfg.MaxPause = 15 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for ep, l := range cfg.Limits {
		if err := l.valid(); err != nil {
			return nil, fmt.Errorf("budget: limit of %s (%s): %w", ep, l, err)
		}
		cfg.Metrics.BudgetLimit(ep, l.Requests)
		for _, c := range l.Caps {
			cfg.Metrics.BudgetWindowLimit(ep, shortDuration(c.Window), c.Requests)
		}
	}
	return &Budget{
		store: store, cfg: cfg, limits: cfg.Limits, log: cfg.Logger, m: cfg.Metrics,
		now: cfg.Clock, sleep: clock.Sleep, lines: map[vercel.Endpoint]*line{}, parked: map[vercel.Endpoint]int64{},
	}, nil
}

func (b *Budget) key(ep vercel.Endpoint) string { return b.cfg.Team + "." + string(ep) }

// Wait returns when the caller may send its call to ep: when the slot
// reserved for it has come. Across processes slots are granted in the
// order they were asked for; within a process callers wait in one line
// per endpoint, ordered by fair share across tenants (fair.ShareOf the
// context: a tenant with a burst of calls does not hold up another's
// single call) and only the caller at the head reserves. A pause
// announced while it slept voids its slot: it reserves again after the
// pause instead of spending a call on a certain 429. While a cap (an
// hourly or daily window) is spent, the line is parked until the cap has
// room; the wait spends no attempt of the job, whose lease is kept by its
// heartbeat.
func (b *Budget) Wait(ctx context.Context, ep vercel.Endpoint) error {
	l, ok := b.limits[ep]
	if !ok {
		return nil
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	began := b.now()
	w := &waiter{ctx: ctx, done: make(chan struct{})}
	ln := b.line(ep)
	share := fair.ShareOf(ctx)
	ln.mu.Lock()
	ln.q.Push(share.Tenant, share.Weight, share.Class, w)
	start := !ln.serving
	ln.serving = true
	ln.mu.Unlock()
	if start {
		go b.serve(ep, l, ln)
	}
	select {
	case <-w.done:
		if w.err == nil {
			b.m.BudgetWait(ep, b.now().Sub(began))
		}
		return w.err
	case <-ctx.Done():
		w.gone.Store(true)
		return context.Cause(ctx)
	}
}

// line is one endpoint's waiting line in this process.
type line struct {
	mu      sync.Mutex
	q       *fair.Queue[*waiter]
	serving bool // a serve goroutine runs the line
}

// waiter is one caller of Wait.
type waiter struct {
	ctx  context.Context
	done chan struct{} // closed when the call may go, or err is set
	err  error
	gone atomic.Bool // the caller stopped waiting
}

func (b *Budget) line(ep vercel.Endpoint) *line {
	b.mu.Lock()
	defer b.mu.Unlock()
	ln := b.lines[ep]
	if ln == nil {
		ln = &line{q: fair.NewQueue[*waiter]()}
		b.lines[ep] = ln
	}
	return ln
}

// next takes the waiter whose turn it is, or ends the line's service when
// nobody waits.
func (ln *line) next() *waiter {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	for {
		w, _, ok := ln.q.Pop()
		if !ok {
			ln.serving = false
			return nil
		}
		if !w.gone.Load() {
			return w
		}
	}
}

// done ends the line's service if nobody waits.
func (ln *line) done() bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.q.Len() > 0 {
		return false
	}
	ln.serving = false
	return true
}

// serve reserves slots for the line's waiters one at a time, in the
// line's order, until nobody waits. One reservation at a time per process
// and endpoint, made when the previous slot has come, is what makes the
// fleet fair too: every process with callers waiting takes the next slot
// in turn, instead of the first to ask reserving a slot for each of its
// callers far ahead of everyone else's.
func (b *Budget) serve(ep vercel.Endpoint, l Limit, ln *line) {
	var w *waiter
	for {
		if w == nil || w.gone.Load() {
			// Whoever's turn it is when the bucket has a slot takes it: a
			// caller that came meanwhile is not put behind one chosen a
			// whole interval before.
			if ln.done() {
				return
			}
			b.untilFree(ep, l)
			if w = ln.next(); w == nil {
				return
			}
		}
		at, granted, err := b.reserve(w.ctx, ep, l)
		if err != nil {
			if w.ctx.Err() == nil {
				w.err = err
				close(w.done)
			}
			w = nil
			continue
		}
		if !granted {
			b.noteParked(ep, l, at)
			_ = b.sleep(w.ctx, time.Duration(at-unixNano(b.now()))) // a caller that leaves hands its place on
			continue
		}
		// The slot is this process's: if its caller leaves before it
		// comes, the next one in line takes it.
		for b.sleep(w.ctx, time.Duration(at-unixNano(b.now()))) != nil {
			if w = ln.next(); w == nil {
				return
			}
		}
		if cur, ok := b.store.Cached(b.key(ep)); ok && cur.PausedUntil > at {
			continue
		}
		close(w.done)
		w = nil
	}
}

// untilFree sleeps until ep's bucket, as this process last saw it, has a
// slot: its next slot, or the end of its pause. Another process may take
// that slot first; the reservation that follows then waits for a later
// one.
func (b *Budget) untilFree(ep vercel.Endpoint, l Limit) {
	st, ok := b.store.Cached(b.key(ep))
	if !ok {
		return
	}
	r := newRule(l, st.Limit, b.cfg.Headroom)
	if d := time.Duration(max(st.TAT-r.tolerance, st.PausedUntil) - unixNano(b.now())); d > 0 {
		_ = b.sleep(context.Background(), d)
	}
}

// reserve asks the shared bucket for ep's next slot: its time, or, when
// a cap is spent, when to ask again (granted false).
func (b *Budget) reserve(ctx context.Context, ep vercel.Endpoint, l Limit) (at int64, granted bool, err error) {
	key := b.key(ep)
	var r rule
	st, err := b.store.Update(ctx, key, func(s *State) {
		r = newRule(l, s.Limit, b.cfg.Headroom)
		at, granted = reserve(s, unixNano(b.now()), r)
	})
	if err != nil {
		return 0, false, fmt.Errorf("budget %s: %w", key, err)
	}
	now := unixNano(b.now())
	b.m.BudgetTokens(ep, tokens(st, now, r))
	for i, used := range capUse(st, now, r) {
		b.m.BudgetWindowUsed(ep, shortDuration(l.Caps[i].Window), used)
	}
	return at, granted, nil
}

// noteParked logs and records that ep's caps hold calls back until
// until, once per park in this process.
func (b *Budget) noteParked(ep vercel.Endpoint, l Limit, until int64) {
	b.mu.Lock()
	seen := b.parked[ep] >= until
	if !seen {
		b.parked[ep] = until
	}
	b.mu.Unlock()
	if seen {
		return
	}
	t := time.Unix(0, until)
	b.m.BudgetParked(ep, t)
	b.log.Info("budget parked: a window's allowance is spent", "endpoint", ep, "limit", l.String(), "scope", b.scope(),
		"until", t.UTC().Format(time.RFC3339))
}

// observeTimeout bounds the shared-state write of one observation; it runs
// on the caller's request path.
const observeTimeout = 5 * time.Second

// resetResolution is the coarsest a reset time comes (X-RateLimit-Reset
// is whole seconds): an exhausted remaining count pauses the bucket only
// when its reset lies beyond the next slot by more than that.
const resetResolution = time.Second

// Observe learns from one answer: 429s and 402s pause the endpoint for
// every process, X-RateLimit-* headers correct the bucket.
func (b *Budget) Observe(ep vercel.Endpoint, status int, rl vercel.RateLimit, err error) {
	l, ok := b.limits[ep]
	if !ok {
		return
	}
	now := b.now()
	if rl.Known {
		b.m.RateLimitRemaining(ep, rl.Remaining, rl.Reset)
	}
	var until time.Time
	reason := ""
	var rle *vercel.RateLimitError
	var ple *vercel.PlanLimitError
	switch {
	case errors.As(err, &rle):
		b.m.RateLimited(ep, status)
		until, reason = resumeAt(now, rle.RetryAfter, rle.Reset, l.Window), "rate_limited"
	case errors.As(err, &ple):
		b.m.RateLimited(ep, status)
		until, reason = resumeAt(now, ple.RetryAfter, ple.Reset, l.Window), "plan_limit"
	}
	cur, _ := b.store.Cached(b.key(ep))
	// An exhausted remaining count on a successful answer pauses only when
	// its reset lies clearly beyond the next slot: otherwise the schedule
	// already waits long enough, and pausing to a whole-second reset would
	// only lose time.
	exhausted := err == nil && rl.Known && rl.Remaining == 0 && rl.Reset.After(now)
	if exhausted && unixNano(rl.Reset)-int64(resetResolution) > cur.TAT {
		until, reason = rl.Reset, "remaining_exhausted"
	}
	if !until.IsZero() && until.Sub(now) > b.cfg.MaxPause {
		b.log.Warn("API announced an absurd wait; capping it", "endpoint", ep, "announced", until.Sub(now).Round(time.Second), "cap", b.cfg.MaxPause)
		b.m.BudgetPauseCapped(ep)
		until = now.Add(b.cfg.MaxPause)
	}
	// A 402's limit counts deployments per day, not calls per window:
	// only other answers teach the bucket its limit.
	reported := rl.Limit
	if ple != nil {
		reported = 0
	}
	learned := 0
	if reported > 0 && reported != l.Requests {
		learned = reported
	}
	needLimit := reported > 0 && learned != cur.Limit
	needPause := !until.IsZero() && unixNano(until) > cur.PausedUntil
	if !needLimit && !needPause {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), observeTimeout)
	defer cancel()
	paused := false
	st, uerr := b.store.Update(ctx, b.key(ep), func(s *State) {
		if reported > 0 {
			s.Limit = learned
		}
		paused = !until.IsZero() && pause(s, unixNano(until))
	})
	if uerr != nil {
		b.log.Warn("budget observation not shared", "endpoint", ep, "err", uerr)
		return
	}
	if needLimit {
		effective := l.Requests
		if st.Limit > 0 {
			effective = st.Limit
		}
		b.m.BudgetLimit(ep, effective)
		b.log.Info("API reports a different limit; bucket follows it", "endpoint", ep, "limit", reported, "configured", l.Requests)
	}
	if paused {
		b.m.BudgetPaused(ep, time.Unix(0, st.PausedUntil))
		b.log.Info("budget paused", "endpoint", ep, "reason", reason, "scope", b.scope(),
			"until", time.Unix(0, st.PausedUntil).UTC().Format(time.RFC3339Nano))
	}
}

// scope says who a pause holds back: the whole fleet when the buckets are
// shared through NATS, else this process only.
func (b *Budget) scope() string {
	if _, ok := b.store.(*KVStore); ok {
		return "fleet"
	}
	return "process"
}

// resumeAt is when calls may resume after a refusal: the announced wait,
// else the reset time, else one window from now.
func resumeAt(now time.Time, retryAfter time.Duration, reset time.Time, window time.Duration) time.Time {
	switch {
	case retryAfter > 0:
		return now.Add(retryAfter)
	case reset.After(now):
		return reset
	}
	return now.Add(window)
}
