package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/deployq/deployq/internal/clip"
	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

// Tenants' quotas (Config.Quotas). A request of a tenant with a quota is
// admitted when its job is first opened: the quota counts it once, for
// the fleet, however often it is retried or redelivered afterwards. Each
// request is decided at its turn in its tenant's lane:
//   - the quota has room: it runs;
//   - the quota is spent and the request asked for rejection
//     (overQuota: reject): it ends at once with a rejected event, code
//     quota_exceeded, saying when the quota allows another;
//   - otherwise it waits, held by the worker that took it (its lease kept
//     fresh, no delivery or attempt spent, its pool slot given up), and
//     the lane is taken out of this worker's turns: the tenant's later
//     requests wait in the stream behind it, where they cost nothing.
//     When the quota has room it runs, and the lane is taken again.
// A platform that wants every request past the quota refused, not queued,
// sets overQuota: reject on all of them: its lane is then never held.

// seat is a job's place in the worker's pool of Concurrency slots. A
// request held for its tenant's quota gives its seat up while it waits,
// so held requests never keep other tenants' work from running.
type seat struct {
	slots chan struct{}
	stop  <-chan struct{} // closed when the worker stops taking work
	taken bool
}

// leave gives the seat back to the pool.
func (s *seat) leave() {
	if s != nil && s.taken {
		<-s.slots
		s.taken = false
	}
}

// retake waits for a free slot; false when the worker stops meanwhile.
func (s *seat) retake() bool {
	if s == nil || s.taken {
		return true
	}
	select {
	case s.slots <- struct{}{}:
		s.taken = true
		return true
	case <-s.stop:
		return false
	}
}

// admit decides a request of a tenant with a quota before its job is
// opened (see above). It returns ok and the time the quota counted it
// (zero when nothing was counted: the job exists already), or the outcome
// of a request that does not go on.
func (w *Worker) admit(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, req *jobs.Request, s *seat, log *slog.Logger) (at time.Time, out outcome, ok bool) {
	q := w.cfg.Quotas
	st, err := jobs.ReadState(ctx, w.assets.Jobs, req.Tenant, req.ID)
	if err != nil {
		log.Warn("job state unavailable; handing the request back", "err", err)
		w.handBack(msg, log, w.cfg.PullWait)
		return time.Time{}, handedBack, false
	}
	if st != nil {
		// Admitted before (a redelivery, a duplicate), or an operator's
		// replay or a cancel: not a new deploy of the tenant's.
		return time.Time{}, handedBack, true
	}
	// The shared lane of the old subject form carries every tenant's
	// requests: it is never held for one.
	lane := w.lanes.laneOf(msg.Subject())
	holdLane := lane.token != legacyLane
	held := false
	// giveBack ends a wait cut short by the worker's stop: another
	// delivery takes the request.
	giveBack := func() (time.Time, outcome, bool) {
		w.handBack(msg, log, 0)
		return time.Time{}, handedBack, false
	}
	defer func() {
		if held {
			w.m.QuotaHeld(req.Tenant, -1)
			if holdLane {
				w.lanes.unhold(lane)
			}
		}
	}()
	for {
		a, err := q.Take(ctx, req.Tenant)
		if err != nil {
			log.Warn("tenant's quota unavailable; handing the request back", "err", err)
			w.handBack(msg, log, w.cfg.PullWait)
			return time.Time{}, handedBack, false
		}
		w.noteQuota(req.Tenant, a.Use)
		if a.OK {
			return a.At, handedBack, true
		}
		if req.OverQuota.Reject() {
			return time.Time{}, w.rejectOverQuota(ctx, msg, meta, req, a.Until, log), false
		}
		if !held {
			held = true
			if holdLane {
				w.lanes.hold(lane.token)
			}
			w.m.QuotaHeld(req.Tenant, 1)
			if !w.cfg.NoProgressEvents {
				w.publishWaiting(jobs.WaitingEvent(req.Tenant, req.ID, 0, "", jobs.WaitingQuota, "", w.now()))
			}
			log.Info("tenant's quota is spent; the request waits for it", "quota", budget.FormatQuota(q.Quota(req.Tenant)), "until", a.Until)
		}
		s.leave()
		// A cancel of the held request ends the wait: the job then
		// opens, sees the mark and ends cancelled, spending no quota.
		cancelled, untrack := w.inflight.track(ctx, req.Tenant, req.ID, nil)
		t := time.NewTimer(max(a.Until.Sub(w.now()), 0))
		select {
		case <-t.C:
		case <-cancelled.Done():
			t.Stop()
			untrack()
			if ctx.Err() != nil || !s.retake() {
				return giveBack()
			}
			return time.Time{}, handedBack, true
		case <-s.stop:
			t.Stop()
			untrack()
			return giveBack()
		}
		untrack()
		if !s.retake() {
			return giveBack()
		}
	}
}

// noteQuota records a tenant's quota use on the metrics.
func (w *Worker) noteQuota(tenant string, use []int) {
	for i, c := range w.cfg.Quotas.Quota(tenant) {
		if i < len(use) {
			w.m.QuotaUsed(tenant, c.WindowString(), use[i])
		}
	}
}

// rejectOverQuota ends a request that asked for rejection when its
// tenant's quota is spent: a rejected event (recorded in its checkpoint
// first, so a redelivery publishes the same one), and the message
// terminated. Unlike an invalid request it is not dead-lettered: nothing
// is wrong with it, and the producer, who asked for the answer, holds it.
func (w *Worker) rejectOverQuota(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, req *jobs.Request, until time.Time, log *slog.Logger) outcome {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), natsOpTimeout)
	defer cancel()
	quota := budget.FormatQuota(w.cfg.Quotas.Quota(req.Tenant))
	until = until.UTC().Truncate(time.Second).Add(time.Second)
	e := (&jobs.JobState{ID: req.ID, Tenant: req.Tenant}).Event(jobs.TypeRejected, "", int(meta.NumDelivered), w.now())
	e.Data.Error = &jobs.EventError{
		Code:    jobs.CodeQuotaExceeded,
		Message: fmt.Sprintf("tenant %s has used its quota of %s deploys; it allows another at %s", req.Tenant, quota, until.Format(time.RFC3339)),
		RetryAt: &until,
	}
	stray, err := w.recordRejection(ctx, req.Tenant, req.ID, delivery(msg, meta), &e)
	if err != nil {
		log.Warn("rejection not recorded; handing back", "err", err)
		w.handBack(msg, log, w.cfg.PullWait)
		return handedBack
	}
	if stray {
		// Another message of the id decided its outcome: this one is a
		// duplicate and the request keeps its own terminal event.
		if err := msg.DoubleAck(ctx); err != nil {
			log.Warn("ack of duplicate failed", "err", err)
		}
		return duplicate
	}
	if err := w.publishEvent(ctx, e); err != nil {
		log.Warn("rejection event not published; handing back", "err", err)
		w.handBack(msg, log, w.cfg.PullWait)
		return handedBack
	}
	if err := msg.TermWithReason(clip.String("rejected: "+e.Data.Error.Message, clip.Reason)); err != nil {
		log.Warn("terminating the rejected request failed", "err", err)
	}
	w.m.QuotaRejected(req.Tenant)
	log.Info("request rejected: its tenant's quota is spent", "quota", quota, "until", until)
	return rejected
}
