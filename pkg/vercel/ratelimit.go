package vercel

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	headerRequestID          = "X-Vercel-Id"
	headerRetryAfter         = "Retry-After"
	headerRateLimitLimit     = "X-RateLimit-Limit"
	headerRateLimitRemaining = "X-RateLimit-Remaining"
	headerRateLimitReset     = "X-RateLimit-Reset"
)

// msEpochThreshold tells epoch milliseconds from epoch seconds: Vercel's 429
// example gives limit.reset in seconds, its 402 example in milliseconds.
// 1e11 seconds is the year 5138 and 1e11 milliseconds is March 1973, so no
// current instant is ambiguous.
const msEpochThreshold = 1e11

// deltaThreshold tells a delay from an instant: a "reset" below 1e9 (an
// instant in 2001) can only be a number of seconds from now, as some
// servers send in X-RateLimit-Reset.
const deltaThreshold = 1e9

// referenceTime is the instant an answer's relative times are measured
// from: the server's Date header when present, so that the client's clock
// skew cancels out of Retry-After dates and reset instants.
func referenceTime(h http.Header, now time.Time) time.Time {
	if d := h.Get("Date"); d != "" {
		if t, err := http.ParseTime(d); err == nil {
			return t
		}
	}
	return now
}

// resetTime reads a reset value given as epoch seconds, epoch milliseconds
// or seconds from ref. It returns the zero time for values that are not
// positive.
func resetTime(v float64, ref time.Time) time.Time {
	switch {
	case v <= 0 || math.IsNaN(v) || math.IsInf(v, 0):
		return time.Time{}
	case v < deltaThreshold:
		return ref.Add(seconds(v))
	case v > msEpochThreshold:
		return time.UnixMilli(int64(v))
	default:
		sec, frac := math.Modf(v)
		return time.Unix(int64(sec), int64(frac*1e9))
	}
}

func seconds(v float64) time.Duration {
	return time.Duration(v * float64(time.Second))
}

// parseRetryAfter reads Retry-After as seconds or as an HTTP date; ok is
// false when the header is absent or unreadable. A date in the past gives 0.
func parseRetryAfter(h http.Header, ref time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get(headerRetryAfter))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return 0, false
		}
		return max(seconds(n), 0), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(ref), 0), true
	}
	return 0, false
}

// parseRateLimitHeaders reads the X-RateLimit-* headers. Vercel does not
// document them, so each is optional and an unreadable one is ignored.
func parseRateLimitHeaders(h http.Header, ref time.Time) RateLimit {
	var rl RateLimit
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get(headerRateLimitLimit))); err == nil && n >= 0 {
		rl.Limit = n
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get(headerRateLimitRemaining))); err == nil && n >= 0 {
		rl.Remaining, rl.Known = n, true
	}
	if v, err := strconv.ParseFloat(strings.TrimSpace(h.Get(headerRateLimitReset)), 64); err == nil {
		rl.Reset = resetTime(v, ref)
	}
	return rl
}

// wireLimit is the limit object of a 429 or 402 body. Pointers tell an
// absent field from a zero one: "remaining":0 is the whole point of a 429.
type wireLimit struct {
	Remaining *float64 `json:"remaining"`
	Reset     *float64 `json:"reset"`
	ResetMs   *float64 `json:"resetMs"`
	Total     *float64 `json:"total"`
}

// rateLimit converts the body's limit object. resetMs is preferred to
// reset because it is unambiguous and more precise.
func (l *wireLimit) rateLimit(ref time.Time) RateLimit {
	var rl RateLimit
	if l.Total != nil && *l.Total >= 0 {
		rl.Limit = int(*l.Total)
	}
	if l.Remaining != nil && *l.Remaining >= 0 {
		rl.Remaining, rl.Known = int(*l.Remaining), true
	}
	if l.ResetMs != nil && *l.ResetMs > 0 {
		rl.Reset = time.UnixMilli(int64(*l.ResetMs))
	} else if l.Reset != nil {
		rl.Reset = resetTime(*l.Reset, ref)
	}
	return rl
}

// mergeRateLimit lets the fields the body states override the headers':
// the body describes the very limit that refused the request.
func mergeRateLimit(headers, body RateLimit) RateLimit {
	out := headers
	if body.Limit != 0 {
		out.Limit = body.Limit
	}
	if body.Known {
		out.Remaining, out.Known = body.Remaining, true
	}
	if !body.Reset.IsZero() {
		out.Reset = body.Reset
	}
	return out
}
