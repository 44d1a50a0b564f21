package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cancellation: Client.Cancel marks the job's checkpoint and publishes a
// notice on deploy.cancel.<tenant>.<id>. A worker running the job cancels
// its context at once; one that would start it later sees the mark. Either
// way the job's resources are cleaned up and it ends with one cancelled
// event. The notice is only a shortcut: the mark in the checkpoint is what
// counts, and workers check it before every step.

const cancelPrefix = "deploy.cancel."

// HeaderRun carries the run number of a replayed request.
const HeaderRun = "Deployq-Run"

// errCancelled is the cause of a job context cancelled by Client.Cancel.
var errCancelled = errors.New("cancelled on request")

// inflight tracks the jobs this worker runs, so a cancel notice reaches
// the right context.
type inflight struct {
	mu   sync.Mutex
	jobs map[string]context.CancelCauseFunc
}

func (f *inflight) track(ctx context.Context, key string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	f.mu.Lock()
	if f.jobs == nil {
		f.jobs = map[string]context.CancelCauseFunc{}
	}
	f.jobs[key] = cancel
	f.mu.Unlock()
	return ctx, func() {
		f.mu.Lock()
		delete(f.jobs, key)
		f.mu.Unlock()
		cancel(nil)
	}
}

func (f *inflight) cancel(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.jobs[key]
	if ok {
		c(errCancelled)
	}
	return ok
}

// running reports whether a job of key runs here.
func (f *inflight) running(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.jobs[key]
	return ok
}

// subscribeCancels delivers cancel notices to running jobs. A notice is
// a hint, not an order: anything in the account may publish on its
// subject (a JetStream push consumer delivers to any subject it is
// given), so a job is cancelled only when its checkpoint, which only
// Client.Cancel's credentials may write, carries the mark. Notices for
// jobs that do not run here cost nothing.
func (w *Worker) subscribeCancels() (*nats.Subscription, error) {
	return w.js.Conn().Subscribe(cancelPrefix+">", func(m *nats.Msg) {
		key := strings.TrimPrefix(m.Subject, cancelPrefix)
		if !w.inflight.running(key) {
			return
		}
		go func() { // a round trip: off the subscription's goroutine
			ctx, cancel := context.WithTimeout(context.Background(), natsOpTimeout)
			defer cancel()
			e, err := w.assets.Jobs.Get(ctx, key)
			if err != nil {
				return // the mark, if any, is seen before the next step
			}
			var st JobState
			if jsonUnmarshal(e.Value(), &st) == nil && st.CancelRequested {
				// The job logs its own "deploy cancelled" line, with its step.
				w.inflight.cancel(key)
			}
		}()
	})
}

// cancel cleans up after a cancelled job and ends it with one cancelled
// event. It runs on a context of its own: the job's was cancelled.
func (j *job) cancel(ctx context.Context, step Step) string {
	j.step = string(step)
	st := &j.cp.state
	ev := newEvent(TypeCancelled, terminalEventID(j.req.Tenant, j.req.ID, st.Run), j.w.now(), EventData{
		RequestID: j.req.ID, Tenant: j.req.Tenant, Step: step, Attempt: int(j.meta.NumDelivered), Run: runField(st.Run),
		ProjectID: st.ProjectID, ProjectName: st.ProjectName, StoreID: st.StoreID, DeploymentID: st.DeploymentID,
		DurationMs: j.w.now().Sub(st.SubmittedAt).Milliseconds(),
	})
	st.Terminal = &ev
	if err := j.cp.save(context.WithoutCancel(ctx), j.w.now()); err != nil {
		return j.abandon(err)
	}
	j.logger().Info("deploy cancelled")
	return j.cleanUpAndEnd(ctx)
}

// runField is the event's run field: omitted for the first run.
func runField(run int) int {
	if run <= 1 {
		return 0
	}
	return run
}

// ErrFinished is returned by Cancel and Replay for a job in a state that
// does not allow it; the error says which.
var ErrFinished = errors.New("job already finished")

// ErrRunning is returned by Replay for a job that has not finished.
var ErrRunning = errors.New("job has not finished")

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
	key := jobKey(tenant, id)
	for range 10 {
		e, err := c.jobsLeader.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			// No checkpoint: never started, or rejected before it could.
			if last, err := c.lastEvent(ctx, tenant, id); err != nil {
				return nil, err
			} else if last != nil && last.Terminal() {
				return &JobState{ID: id, Tenant: tenant, Status: StatusRejected, Terminal: last},
					fmt.Errorf("%w: %s", ErrFinished, last.Short())
			}
			st := JobState{Version: stateVersion, ID: id, Tenant: tenant, Status: StatusQueued, Run: 1,
				CancelRequested: true, SubmittedAt: c.now(), UpdatedAt: c.now()}
			data, _ := jsonMarshal(st)
			if _, err := c.jobs.Create(ctx, key, data); errors.Is(err, jetstream.ErrKeyExists) {
				continue
			} else if err != nil {
				return nil, fmt.Errorf("record cancel: %w", err)
			}
			return &st, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read job: %w", err)
		}
		var st JobState
		if err := jsonUnmarshal(e.Value(), &st); err != nil {
			return nil, err
		}
		if st.Done() {
			return &st, fmt.Errorf("%w: %s", ErrFinished, st.Status)
		}
		st.CancelRequested = true
		data, _ := jsonMarshal(st)
		if _, err := c.jobs.Update(ctx, key, data, e.Revision()); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // a worker wrote meanwhile: mark the newer state
		} else if err != nil {
			return nil, fmt.Errorf("record cancel: %w", err)
		}
		// The mark is what counts; the notice only saves the running
		// worker from noticing at its next step.
		_ = c.js.Conn().Publish(cancelPrefix+key, nil)
		return &st, nil
	}
	return nil, errors.New("cancel: the job's checkpoint kept changing; try again")
}
