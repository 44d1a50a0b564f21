package jobs

import (
	"context"
)

// Cancellation: Client.Cancel marks the job's checkpoint and publishes a
// notice on deploy.cancel.<tenant>.<id>. A worker running the job cancels
// its context at once; one that would start it later sees the mark. Either
// way the job's resources are cleaned up and it ends with one cancelled
// event. The notice is only a shortcut: the mark in the checkpoint is what
// counts, and workers check it before every step.

// HeaderRun carries the run number of a replayed request.
const HeaderRun = "Deployq-Run"

// Cancel stops a request: a queued one never runs, a running one stops
// at once. Its resources are deleted (unless the workers keep failed
// resources) and it ends with a cancelled event. Cancelling an unknown id
// records the cancel for a request that may still arrive.
func (c *Client) Cancel(ctx context.Context, tenant, id string) (*JobState, error) {
	if err := c.adminOnly("cancel " + id); err != nil {
		return nil, err
	}
	if !tenantPattern.MatchString(tenant) || !idPattern.MatchString(id) {
		return nil, invalid("", "cancel needs a valid tenant and id")
	}
	st, err := requestCancel(ctx, c.jobsLeader, tenant, id, func(ctx context.Context) (*Event, error) {
		return c.lastEvent(ctx, tenant, id)
	}, c.now())
	if err != nil {
		return st, err
	}
	// The mark is what counts; the notice only saves the running worker
	// from noticing at its next step.
	_ = c.js.Conn().Publish(CancelSubject(tenant, id), nil)
	return st, nil
}
