package vercelsim

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// dailyCapWindow is the window of Config.DailyDeploymentCap.
const dailyCapWindow = 24 * time.Hour

// dailyCapResource is the resource Vercel names in a 402 for the Hobby
// plan's daily deployments.
const dailyCapResource = "api-deployments-free-per-day"

type limitKey struct {
	team   string
	ep     vercel.Endpoint
	window time.Duration
}

// window is one fixed window: it opened at start and has let count
// requests through.
type window struct {
	start time.Time
	count int
}

// limiter holds the rate-limit windows of every (team, endpoint) and the
// daily deployment cap of every team. The Server's mutex guards it.
type limiter struct {
	limits  map[vercel.Endpoint]Limit
	windows map[limitKey]*window
	cap     int
	daily   map[string]*window
}

func newLimiter(limits map[vercel.Endpoint]Limit, dailyCap int) limiter {
	return limiter{
		limits:  limits,
		windows: map[limitKey]*window{},
		cap:     dailyCap,
		daily:   map[string]*window{},
	}
}

func (l *limiter) set(ep vercel.Endpoint, lim Limit) {
	if lim.none() {
		delete(l.limits, ep)
		return
	}
	l.limits[ep] = lim
}

// limitDecision is what the limiter said about one request.
type limitDecision struct {
	limited   bool // the endpoint has a limit: send X-RateLimit-* headers
	exceeded  bool // answer 429
	total     int
	remaining int
	reset     time.Time
}

// take counts one request of ep by team at now in every window of the
// endpoint. A refused request counts in none: each window's count stays
// at its limit until the window ends. The headers describe the window
// with the fewest calls left (the shortest of equals); a 429's reset is
// the latest of the full windows', when every one has room again.
func (l *limiter) take(ep vercel.Endpoint, team string, now time.Time) limitDecision {
	lim, ok := l.limits[ep]
	if !ok {
		return limitDecision{}
	}
	windows := lim.windows()
	open := make([]*window, len(windows))
	d := limitDecision{limited: true}
	for i, lw := range windows {
		k := limitKey{team, ep, lw.Window}
		w := l.windows[k]
		if w == nil || !now.Before(w.start.Add(lw.Window)) {
			w = &window{start: now}
			l.windows[k] = w
		}
		open[i] = w
		if w.count >= lw.Requests {
			d.exceeded = true
			if reset := w.start.Add(lw.Window); reset.After(d.reset) {
				d.reset, d.total = reset, lw.Requests
			}
		}
	}
	if d.exceeded {
		return d
	}
	for i, lw := range windows {
		open[i].count++
		left := lw.Requests - open[i].count
		if i == 0 || left < d.remaining {
			d.total, d.remaining, d.reset = lw.Requests, left, open[i].start.Add(lw.Window)
		}
	}
	return d
}

// ceilUnix is t in whole seconds, rounded up: a client that waits until
// the announced second never arrives before the window really ends.
func ceilUnix(t time.Time) int64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}

// ceilUnixMilli is t in whole milliseconds, rounded up.
func ceilUnixMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) > 0 {
		ms++
	}
	return ms
}

// setHeaders adds the X-RateLimit-* headers Vercel sends on every answer of
// a limited endpoint; Reset is in epoch seconds.
func (d limitDecision) setHeaders(h http.Header) {
	if !d.limited {
		return
	}
	h.Set("X-RateLimit-Limit", strconv.Itoa(d.total))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(d.remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(ceilUnix(d.reset), 10))
}

// rateLimitNotice is the limit object of a 429: reset in seconds, resetMs
// in milliseconds.
type rateLimitNotice struct {
	Remaining int   `json:"remaining"`
	Reset     int64 `json:"reset"`
	ResetMs   int64 `json:"resetMs"`
	Total     int   `json:"total"`
}

// reply is the 429 for an exceeded decision. Retry-After is whole seconds,
// at least 1, rounded up so that honouring it is always enough.
func (d limitDecision) reply(now time.Time) reply {
	wait := d.reset.Sub(now)
	secs := int64((wait + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	rep := errorReply(http.StatusTooManyRequests, apiError{
		Code:    "rate_limited",
		Message: "Rate limit exceeded",
		Limit: &rateLimitNotice{
			Remaining: 0,
			Reset:     ceilUnix(d.reset),
			ResetMs:   ceilUnixMilli(d.reset),
			Total:     d.total,
		},
	})
	rep.header = http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
	return rep
}

// planLimitNotice is the limit object of a 402: reset in milliseconds, and
// no resetMs.
type planLimitNotice struct {
	Total     int   `json:"total"`
	Remaining int   `json:"remaining"`
	Reset     int64 `json:"reset"`
}

// takeDeployment counts one deployment of team against the daily cap, or
// returns the 402 when the cap is reached. It is called only once the
// deployment is certain to be created, so refused and invalid requests do
// not use up the cap.
func (l *limiter) takeDeployment(team string, now time.Time) *reply {
	if l.cap == 0 {
		return nil
	}
	w := l.daily[team]
	if w == nil || !now.Before(w.start.Add(dailyCapWindow)) {
		w = &window{start: now}
		l.daily[team] = w
	}
	if w.count >= l.cap {
		rep := errorReply(http.StatusPaymentRequired, apiError{
			Code: "payment_required",
			Message: fmt.Sprintf("Resource is limited - try again in 24 hours (more than %d, code: %q).",
				l.cap, dailyCapResource),
			Limit: &planLimitNotice{
				Total:     l.cap,
				Remaining: 0,
				Reset:     ceilUnixMilli(w.start.Add(dailyCapWindow)),
			},
			Resource: dailyCapResource,
		})
		return &rep
	}
	w.count++
	return nil
}
