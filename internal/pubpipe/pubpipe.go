package pubpipe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Result is the server's answer to one asynchronous publish.
type Result struct {
	Ack *jetstream.PubAck
	Err error
}

// ErrNotSent marks a publish that never left this client.
var ErrNotSent = errors.New("not sent")

// PublishAll publishes msgs in order without waiting for each answer,
// with at most window of them unanswered, and returns every answer in the
// order of msgs. Keeping many publishes in flight on one connection is
// what makes a batch fast: a synchronous publish spends most of its time
// waiting for the round trip, not in the client or the server.
//
// The bound is this call's own (a window over its oldest unanswered
// publish), not only the JetStream context's, which other publishers
// share; a context that is full anyway makes this call wait for its own
// oldest answers first.
//
// Waiting ends with ctx. Without a deadline, a message waits at most the
// context's DefaultTimeout from its publish, as a synchronous publish
// would. An unanswered publish may still have been stored; see
// MayBeStored.
func PublishAll(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg, window int) []Result {
	out := make([]Result, len(msgs))
	futs := make([]jetstream.PubAckFuture, len(msgs))
	w := newAckWaiter(ctx, js.Options().DefaultTimeout, len(msgs))
	defer w.stop()
	window = max(window, 1)
	oldest := 0
	settle := func() {
		if futs[oldest] != nil {
			out[oldest] = w.wait(oldest, futs[oldest])
			futs[oldest] = nil
		}
		oldest++
	}
	for k, m := range msgs {
		for k-oldest >= window {
			settle()
		}
		if ctx.Err() != nil {
			out[k].Err = fmt.Errorf("%w: %w", ErrNotSent, context.Cause(ctx))
			continue
		}
		w.sent(k)
		fut, err := js.PublishMsgAsync(m)
		for errors.Is(err, jetstream.ErrTooManyStalledMsgs) && oldest < k {
			settle()
			w.sent(k)
			fut, err = js.PublishMsgAsync(m)
		}
		if err != nil {
			out[k].Err = fmt.Errorf("%w: %w", ErrNotSent, err)
			continue
		}
		futs[k] = fut
	}
	for oldest < len(msgs) {
		settle()
	}
	return out
}

// ackWaiter waits for the answers of one PublishAll.
type ackWaiter struct {
	ctx     context.Context
	timeout time.Duration // per message; 0 when ctx has a deadline
	sentAt  []time.Time
	timer   *time.Timer
}

func newAckWaiter(ctx context.Context, timeout time.Duration, n int) *ackWaiter {
	w := &ackWaiter{ctx: ctx}
	if _, ok := ctx.Deadline(); !ok && timeout > 0 {
		w.timeout, w.sentAt = timeout, make([]time.Time, n)
	}
	return w
}

func (w *ackWaiter) sent(k int) {
	if w.sentAt != nil {
		w.sentAt[k] = time.Now()
	}
}

func (w *ackWaiter) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// wait returns message k's answer, or why there was none.
func (w *ackWaiter) wait(k int, fut jetstream.PubAckFuture) Result {
	var expired <-chan time.Time
	if w.sentAt != nil {
		d := time.Until(w.sentAt[k].Add(w.timeout))
		if w.timer == nil {
			w.timer = time.NewTimer(d)
		} else {
			w.timer.Reset(d)
		}
		expired = w.timer.C
	}
	select {
	case ack := <-fut.Ok():
		return Result{Ack: ack}
	case err := <-fut.Err():
		return Result{Err: err}
	case <-w.ctx.Done():
	case <-expired:
	}
	// The answer may have come at the same moment.
	select {
	case ack := <-fut.Ok():
		return Result{Ack: ack}
	case err := <-fut.Err():
		return Result{Err: err}
	default:
	}
	if err := w.ctx.Err(); err != nil {
		return Result{Err: context.Cause(w.ctx)}
	}
	return Result{Err: fmt.Errorf("no answer within %s: %w", w.timeout, jetstream.ErrAsyncPublishTimeout)}
}

// MayBeStored reports whether a publish that failed with err may have
// been stored all the same. Only an answer from the stream (an API error),
// no stream to answer, or a message that never left the client prove that
// it was not; a lost or late answer (a timeout, the caller giving up, a
// dropped connection) proves nothing. A request that may be in the stream
// keeps its source reference: releasing it could let the janitor delete
// the tarball a queued job still needs, whereas a reference kept in vain
// only delays a deletion until the bucket's max age.
func MayBeStored(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, ErrNotSent):
		return false
	}
	return true
}

// ForEach calls f(0) … f(n-1) from at most limit goroutines and returns
// when every call has returned. One call runs on the caller's goroutine.
func ForEach(n, limit int, f func(int)) {
	if n <= 1 || limit <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, limit) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}
