package worker

import (
	"context"
	"errors"
	"sync"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go"
)

// Cancellation, the worker's side: Client.Cancel marks the job's
// checkpoint and publishes a notice (jobs.CancelSubject). The worker
// running the job cancels its context at once; one that would start it
// later sees the mark, which every step's fence reads in. Either way the
// job ends through job.cancel: cleaned up, with one cancelled event.

// errCancelled is the cause of a job context cancelled by Client.Cancel.
var errCancelled = errors.New("cancelled on request")

// inflight tracks the jobs this worker runs, by their cancel subject, so
// a cancel notice reaches the right context.
type inflight struct {
	mu   sync.Mutex
	jobs map[string]*tracked
}

// tracked is one running job's entry.
type tracked struct {
	tenant, id string
	cancel     context.CancelCauseFunc
	// logs, when not nil, hears that someone started following the job's
	// build log (buildlog.go).
	logs chan struct{}
}

// track registers a running job; logs, when not nil, is signalled when a
// follower of its build log arrives.
func (f *inflight) track(ctx context.Context, tenant, id string, logs chan struct{}) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	key := jobs.CancelSubject(tenant, id)
	f.mu.Lock()
	if f.jobs == nil {
		f.jobs = map[string]*tracked{}
	}
	f.jobs[key] = &tracked{tenant: tenant, id: id, cancel: cancel, logs: logs}
	f.mu.Unlock()
	return ctx, func() {
		f.mu.Lock()
		delete(f.jobs, key)
		f.mu.Unlock()
		cancel(nil)
	}
}

// lookup returns the job running here that a cancel notice names.
func (f *inflight) lookup(subject string) *tracked {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.jobs[subject]
}

// subscribeCancels delivers cancel notices to running jobs. A notice is
// a hint, not an order: anything in the account may publish on its
// subject (a JetStream push consumer delivers to any subject it is
// given), so a job is cancelled only when its checkpoint, which only
// Client.Cancel's credentials may write, carries the mark. Notices for
// jobs that do not run here cost nothing.
func (w *Worker) subscribeCancels() (*nats.Subscription, error) {
	return w.js.Conn().Subscribe(jobs.AllCancels, func(m *nats.Msg) {
		t := w.inflight.lookup(m.Subject)
		if t == nil {
			return
		}
		go func() { // a round trip: off the subscription's goroutine
			ctx, cancel := context.WithTimeout(context.Background(), natsOpTimeout)
			defer cancel()
			st, err := jobs.ReadState(ctx, w.assets.Jobs, t.tenant, t.id)
			if err == nil && st != nil && st.CancelRequested {
				// The job logs its own "deploy cancelled" line, with its step.
				t.cancel(errCancelled)
			}
			// Otherwise the mark, if any, is seen before the next step.
		}()
	})
}
