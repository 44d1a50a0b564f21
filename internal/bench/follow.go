package bench

import (
	"context"
	"sync"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
)

// Ended is a terminal event and when the follower received it.
type Ended struct {
	jobs.Event
	At time.Time
}

// Follower receives a tenant's terminal events through jobs.Client.Watch,
// as a platform waiting for its deploys would. Start it before the first
// submit, so that nothing is missed. Events are stamped on arrival and
// buffered, so a slow reader never delays the stamps.
type Follower struct {
	ch   chan Ended
	stop func()
}

// Follow starts following tenant's terminal events; buffer should hold
// all the events the caller expects.
func Follow(ctx context.Context, c *jobs.Client, tenant string, buffer int) (*Follower, error) {
	wctx, cancel := context.WithCancel(ctx)
	w, err := c.Watch(wctx, jobs.WatchFilter{Tenant: tenant, TerminalOnly: true})
	if err != nil {
		cancel()
		return nil, err
	}
	f := &Follower{ch: make(chan Ended, buffer)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev, err := range w.Events() {
			if err != nil || !ev.Terminal() {
				continue
			}
			select {
			case f.ch <- Ended{Event: ev, At: time.Now()}:
			case <-wctx.Done():
				return
			}
		}
	})
	f.stop = func() {
		cancel()
		w.Stop()
		wg.Wait()
	}
	return f, nil
}

// Stop ends the watch.
func (f *Follower) Stop() { f.stop() }

// Await collects the first terminal event of each id in want until all
// have one, timeout passes or ctx ends; events of other ids are dropped.
// It returns what arrived and, after a timeout, the ids without an event.
// progress, when not nil, is called with the count every period.
func (f *Follower) Await(ctx context.Context, want map[string]bool, timeout, period time.Duration, progress func(ended int)) (got map[string]Ended, missing []string, err error) {
	got = make(map[string]Ended, len(want))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var tick <-chan time.Time
	if progress != nil && period > 0 {
		t := time.NewTicker(period)
		defer t.Stop()
		tick = t.C
	}
	for len(got) < len(want) {
		select {
		case e := <-f.ch:
			if _, dup := got[e.Data.RequestID]; want[e.Data.RequestID] && !dup {
				got[e.Data.RequestID] = e
			}
		case <-tick:
			progress(len(got))
		case <-deadline.C:
			for id := range want {
				if _, ok := got[id]; !ok {
					missing = append(missing, id)
				}
			}
			return got, missing, nil
		case <-ctx.Done():
			return got, nil, ctx.Err()
		}
	}
	return got, nil, nil
}

// Events is the stream of terminal events, for a caller that acts on
// each as it comes instead of awaiting a set.
func (f *Follower) Events() <-chan Ended { return f.ch }
