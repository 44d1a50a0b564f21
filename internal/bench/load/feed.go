package load

import (
	"context"
	"fmt"
	"time"

	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/pkg/jobs"
)

// watchTerminal follows the benchmark tenant's terminal events.
func watchTerminal(ctx context.Context, c *jobs.Client, buffer int) (*bench.Follower, error) {
	return bench.Follow(ctx, c, benchTenant, buffer)
}

// await waits until every id in want has ended; a timeout is an error.
func await(ctx context.Context, f *bench.Follower, want map[string]bool, timeout time.Duration) (map[string]bench.Ended, error) {
	got, missing, err := f.Await(ctx, want, timeout, 0, nil)
	if err == nil && len(missing) > 0 {
		err = fmt.Errorf("after %s, %d of %d requests have no terminal event", timeout, len(missing), len(want))
	}
	return got, err
}

// lastOf is the latest arrival among events, and how many did not succeed.
func lastOf(events map[string]bench.Ended) (last time.Time, notSucceeded int) {
	for _, e := range events {
		if e.At.After(last) {
			last = e.At
		}
		if e.Type != jobs.TypeSucceeded {
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
