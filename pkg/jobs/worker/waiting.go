package worker

import (
	"context"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel"
)

// Waiting events (jobs.TypeWaiting) tell whoever follows a request why a
// step is slow: its call waits for the fleet's API budget, or the team's
// concurrent builds are full. They are informative, like progress events,
// and not published with Config.NoProgressEvents.

// waitNoticeAfter is how long a call waits for its budget before the job
// says so: shorter waits are the budget's ordinary pacing.
const waitNoticeAfter = 2 * time.Second

// stepCtx is ctx for one step: a call of it that waits long for the API
// budget publishes a waiting event. The event is built from the
// request's identity alone, as the notice comes from another goroutine.
func (j *job) stepCtx(ctx context.Context, step jobs.Step) context.Context {
	if j.w.cfg.NoProgressEvents {
		return ctx
	}
	tenant, id, run := j.req.Tenant, j.req.ID, j.st.Run
	return vercel.WithWaitNotice(ctx, waitNoticeAfter, func(ep vercel.Endpoint, since time.Time) {
		j.w.publishWaiting(jobs.WaitingEvent(tenant, id, run, step, jobs.WaitingBudget, string(ep), since))
	})
}

// waitingFor publishes that the job's step waits for what (on the job's
// goroutine).
func (j *job) waitingFor(step jobs.Step, what string) {
	if j.w.cfg.NoProgressEvents {
		return
	}
	j.w.publishWaiting(jobs.WaitingEvent(j.req.Tenant, j.req.ID, j.st.Run, step, what, "", j.now()))
}

// publishWaiting publishes a waiting event without waiting for the
// stream's answer: it is informative, and its step's own event follows.
func (w *Worker) publishWaiting(ev jobs.Event) {
	m, err := ev.Msg()
	if err == nil {
		_, err = w.js.PublishMsgAsync(m)
	}
	if err != nil {
		w.log.Debug("waiting event not published", "request_id", ev.Data.RequestID, "err", err)
	}
}
