package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
)

// ended is one terminal event as the watcher received it.
type ended struct {
	id  string
	typ string
	at  time.Time // when the watcher got it
}

// feed follows the tenant's terminal events through jobs.Client.Watch, as
// a platform waiting for its deploys would. The subscription exists before
// the first submit, so nothing is missed; events are stamped on arrival
// and buffered, so a slow reader never delays the stamps.
type feed struct {
	ch   chan ended
	stop func()
}

func watchTerminal(ctx context.Context, c *jobs.Client, buffer int) (*feed, error) {
	wctx, cancel := context.WithCancel(ctx)
	w, err := c.Watch(wctx, jobs.WatchFilter{Tenant: benchTenant})
	if err != nil {
		cancel()
		return nil, err
	}
	f := &feed{ch: make(chan ended, buffer)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev, err := range w.Events() {
			if err != nil || !ev.Terminal() {
				continue
			}
			select {
			case f.ch <- ended{id: ev.Data.RequestID, typ: ev.Type, at: time.Now()}:
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

// await waits until every id in want has ended, or timeout passes. It
// returns each id's terminal event; events of other ids are dropped.
func (f *feed) await(ctx context.Context, want map[string]bool, timeout time.Duration) (map[string]ended, error) {
	got := make(map[string]ended, len(want))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(got) < len(want) {
		select {
		case e := <-f.ch:
			if _, dup := got[e.id]; want[e.id] && !dup {
				got[e.id] = e
			}
		case <-deadline.C:
			return got, fmt.Errorf("after %s, %d of %d requests have no terminal event", timeout, len(want)-len(got), len(want))
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
	return got, nil
}

// lastOf is the latest arrival among events, and how many did not succeed.
func lastOf(events map[string]ended) (last time.Time, notSucceeded int) {
	for _, e := range events {
		if e.at.After(last) {
			last = e.at
		}
		if e.typ != jobs.TypeSucceeded {
			notSucceeded++
		}
	}
	return last, notSucceeded
}

// idSet names n requests prefix-0000 … as a set.
func idSet(prefix string, n int) (ids []string, set map[string]bool) {
	ids = make([]string, n)
	set = make(map[string]bool, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%05d", prefix, i)
		set[ids[i]] = true
	}
	return ids, set
}
