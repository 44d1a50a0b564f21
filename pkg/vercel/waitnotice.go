package vercel

import (
	"context"
	"time"
)

// waitNoticeKey keys the wait notice in a context.
type waitNoticeKey struct{}

type waitNotice struct {
	after time.Duration
	fn    func(ep Endpoint, since time.Time)
}

// WithWaitNotice returns ctx carrying fn, which the Client calls (from
// another goroutine) when one of ctx's calls has waited after for its
// Limiter and still waits: so that whoever waits on the call can be told
// why it is slow ("waiting for API budget: deployments.create"). fn is
// called at most once per call, with when the wait began.
func WithWaitNotice(ctx context.Context, after time.Duration, fn func(ep Endpoint, since time.Time)) context.Context {
	return context.WithValue(ctx, waitNoticeKey{}, waitNotice{after: after, fn: fn})
}

// noticeWait arms the context's wait notice for a Limiter wait that
// begins now; the returned func disarms it when the wait ends.
func noticeWait(ctx context.Context, ep Endpoint) func() {
	n, ok := ctx.Value(waitNoticeKey{}).(waitNotice)
	if !ok || n.fn == nil {
		return func() {}
	}
	began := time.Now()
	t := time.AfterFunc(n.after, func() { n.fn(ep, began) })
	return func() { t.Stop() }
}
