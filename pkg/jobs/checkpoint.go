package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A job's state machine, in one place. A checkpoint in the DEPLOY_JOBS
// bucket is written by the worker that runs the job, by Client.Cancel and
// Client.Replay, and by the worker that dead-letters a request out of
// deliveries. Every write below is a compare-and-set on the revision the
// writer last read or wrote, so two writers never both win:
//
//	(none) ─StartJob─▶ running ─SaveStep/AttemptFailed─▶ running
//	(none) ─Client.Cancel─▶ queued+cancel ─Claim─▶ running+cancel
//	queued|running ─Client.Cancel─▶ the same, marked (a mark is merged, not a takeover)
//	failed|rejected ─Client.Replay─▶ queued (run n+1) ─Claim─▶ running
//	running ─Succeed─▶ succeeded
//	running ─Decide─▶ running+terminal ─End─▶ failed|rejected|cancelled
//	(none) ─RecordRejection─▶ rejected
//	any not done ─TakeOverExhausted─▶ running (fenced) ─Decide/End─▶ failed
//
// A worker owns a running job through its lease (Owner, Lease): Claim
// raises the lease, and a write that finds another owner's lease fails
// with ErrLeaseLost. A cancel mark written meanwhile is not a takeover:
// it is merged into the writer's state and the write retried.

// Checkpoint is a handle on one job's stored state: the state as this
// handle last read or wrote it, and its revision in the bucket. Its
// methods are the only writes of a job's state; State may be read freely,
// and the ids a step creates (ProjectID, StoreID, …) are recorded in it
// directly and saved by the next transition.
type Checkpoint struct {
	kv    jetstream.KeyValue
	key   string
	rev   uint64
	State JobState
}

// stateVersion is the schema of JobState.
const stateVersion = 1

// maxKeptErrors bounds the checkpoint size when a step fails repeatedly.
const maxKeptErrors = 20

// ErrLeaseLost means another worker owns the job now; the caller must stop
// acting on it and must not ack the message.
var ErrLeaseLost = errors.New("job lease lost to another worker")

// ErrFinished is returned by Cancel and Replay for a job in a state that
// does not allow it; the error says which.
var ErrFinished = errors.New("job already finished")

// ErrRunning is returned by Replay for a job that has not finished.
var ErrRunning = errors.New("job has not finished")

// errContended is a compare-and-set loop that kept losing.
func errContended(what string) error {
	return fmt.Errorf("%s: the job's checkpoint kept changing; try again", what)
}

// Delivery is what a worker knows of the request message it holds.
type Delivery struct {
	// Seq is the message's sequence in the requests stream.
	Seq uint64
	// Submitted is when the stream stored it.
	Submitted time.Time
	// Run is the run the message starts: 1, or a replay's run number.
	Run int
	// First is true on the message's first delivery: the job is then
	// most likely new, and creating its checkpoint is tried before
	// reading it.
	First bool
}

// StartJob opens the checkpoint of the job d carries for owner. A job
// seen for the first time is created already claimed (one write instead
// of a create and a claim): created is true. Otherwise the stored
// checkpoint is returned unchanged, for the caller to tell a duplicate, a
// job already ended or one to Claim.
func StartJob(ctx context.Context, kv jetstream.KeyValue, tenant, id string, d Delivery, owner string, now time.Time) (cp *Checkpoint, created bool, err error) {
	return open(ctx, kv, JobState{
		Version: stateVersion, ID: id, Tenant: tenant, Status: StatusRunning,
		SubmittedAt: d.Submitted, Seq: d.Seq, Run: 1,
		Owner: owner, Lease: 1, StartedAt: now, UpdatedAt: now,
	}, d.First)
}

// Carries reports whether the message d is the one that owns this job:
// the message that started it, or the first to arrive for a checkpoint
// written before its message (a cancel that came first, a replay). Any
// other message of the id is a duplicate.
func (c *Checkpoint) Carries(d Delivery) bool {
	st := &c.State
	return st.Seq == d.Seq || (st.Seq == 0 && !st.Done() && d.Run == st.run())
}

// Claim makes owner the running job's owner with a new lease, and binds
// the job to message d when its checkpoint was written before d arrived.
func (c *Checkpoint) Claim(ctx context.Context, owner string, d Delivery, now time.Time) error {
	st := &c.State
	if st.Seq == 0 {
		st.Seq, st.SubmittedAt = d.Seq, d.Submitted
	}
	st.Status = StatusRunning
	st.Owner = owner
	st.Lease++
	if st.StartedAt.IsZero() {
		st.StartedAt = now
	}
	return c.save(ctx, now)
}

// SaveStep records that step succeeded: the job resumes after it.
// Attempts start again (they are capped per step). With persist false the
// record rides along with the next write; the step must then be safe to
// run again.
func (c *Checkpoint) SaveStep(ctx context.Context, step Step, persist bool, now time.Time) error {
	c.State.Step = step
	c.State.Attempts = 0
	if !persist {
		return nil
	}
	return c.save(ctx, now)
}

// AttemptFailed records a failed attempt, counted against maxAttempts
// unless it was a rate-limit refusal (waiting for the budget is not
// failing). It reports exhausted, without a write, when the step has used
// its attempts: the caller then decides the failure. Otherwise the
// attempt is saved, so a redelivery keeps counting.
func (c *Checkpoint) AttemptFailed(ctx context.Context, e AttemptError, counted bool, maxAttempts int, now time.Time) (exhausted bool, err error) {
	st := &c.State
	if counted {
		st.Attempts++
	}
	st.Errors = append(st.Errors, e)
	if n := len(st.Errors); n > maxKeptErrors {
		st.Errors = st.Errors[n-maxKeptErrors:]
	}
	if counted && st.Attempts >= maxAttempts {
		return true, nil
	}
	return false, c.save(ctx, now)
}

// Succeed records the job's success and its terminal event (built with
// State.Event), before the event is published: a crash between the two
// publishes the same event again.
func (c *Checkpoint) Succeed(ctx context.Context, terminal Event, now time.Time) error {
	c.State.Status, c.State.Terminal = StatusSucceeded, &terminal
	return c.save(ctx, now)
}

// Decide records how the job ends, failed, rejected or cancelled, before
// its resources are cleaned up: a worker dying mid-clean-up leaves a job
// that the next delivery finishes cleaning, with the same reason, instead
// of running it again against deleted resources. End completes it.
func (c *Checkpoint) Decide(ctx context.Context, terminal Event, now time.Time) error {
	c.State.Terminal = &terminal
	return c.save(ctx, now)
}

// Decided reports whether the job's end was decided and is not yet
// recorded as its status (a crash came during the clean-up).
func (c *Checkpoint) Decided() bool { return c.State.Terminal != nil && !c.State.Done() }

// End records the decided end as the job's status, with the resources
// the clean-up deleted in its terminal event.
func (c *Checkpoint) End(ctx context.Context, cleaned []string, now time.Time) error {
	st := &c.State
	st.Terminal.Data.Cleaned = cleaned
	switch st.Terminal.Type {
	case TypeCancelled:
		st.Status = StatusCancelled
	case TypeRejected:
		st.Status = StatusRejected
	default:
		st.Status = StatusFailed
	}
	return c.save(ctx, now)
}

// MarkPublished records that the terminal event is in the events stream,
// for a redelivery that must settle the message without publishing it
// again after the stream's dedup window.
func (c *Checkpoint) MarkPublished(ctx context.Context, now time.Time) error {
	c.State.Published = true
	return c.save(ctx, now)
}

// Verify is the fence before a side effect: it fails with ErrLeaseLost
// when another worker took the job over since this handle's last write,
// so a worker that was paused past its lease never calls the API for a
// job it no longer owns. It costs one read, and takes in a cancel mark.
func (c *Checkpoint) Verify(ctx context.Context) error { return c.refresh(ctx) }

// RecordRejection records the job of a request message refused before it
// ran, with its rejected event. created is false when the id has a
// checkpoint already: existing is it, for the caller to tell its own
// earlier write (a redelivery after a crash) from another message's job.
func RecordRejection(ctx context.Context, kv jetstream.KeyValue, tenant, id string, d Delivery, terminal Event, now time.Time) (existing *JobState, created bool, err error) {
	cp, created, err := open(ctx, kv, JobState{
		Version: stateVersion, ID: id, Tenant: tenant, Status: StatusRejected, Run: 1, Seq: d.Seq,
		SubmittedAt: d.Submitted, StartedAt: now, UpdatedAt: now, Terminal: &terminal,
	}, d.First)
	if err != nil {
		return nil, false, fmt.Errorf("record rejection: %w", err)
	}
	return &cp.State, created, nil
}

// TakeOverExhausted takes the job of request message seq, which ran out
// of deliveries, from whoever held it (fencing them out), to fail it.
// The returned checkpoint is nil when there is nothing to fail: stray is
// true when the job belongs to another message of the id (this one is a
// duplicate), and done holds a job that had already ended.
func TakeOverExhausted(ctx context.Context, kv jetstream.KeyValue, tenant, id string, seq uint64, now time.Time) (cp *Checkpoint, done *JobState, stray bool, err error) {
	cp, _, err = open(ctx, kv, JobState{
		Version: stateVersion, ID: id, Tenant: tenant, Status: StatusRunning, Run: 1, Seq: seq, SubmittedAt: now,
	}, false)
	if err != nil {
		return nil, nil, false, err
	}
	st := &cp.State
	switch {
	case st.Seq != 0 && st.Seq != seq:
		return nil, nil, true, nil
	case st.Done():
		return nil, st, false, nil
	}
	st.Seq = seq
	st.Owner, st.Lease = "max-deliveries", st.Lease+1
	if err := cp.save(ctx, now); err != nil {
		return nil, nil, false, err
	}
	return cp, nil, false, nil
}

// requestCancel marks the job of tenant's request id for cancelling and
// returns the state it marked. A job with no checkpoint yet gets a queued
// one carrying the mark, for a request that may still arrive, unless
// ended (asked only then) finds that the id ended without one (rejected
// before its job could start). kv must read from the stream leader.
func requestCancel(ctx context.Context, kv jetstream.KeyValue, tenant, id string, ended func(context.Context) (*Event, error), now time.Time) (*JobState, error) {
	key := jobKey(tenant, id)
	for range 10 {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if last, err := ended(ctx); err != nil {
				return nil, err
			} else if last != nil && last.Terminal() {
				return &JobState{ID: id, Tenant: tenant, Status: StatusRejected, Terminal: last},
					fmt.Errorf("%w: %s", ErrFinished, last.Short())
			}
			st := JobState{Version: stateVersion, ID: id, Tenant: tenant, Status: StatusQueued, Run: 1,
				CancelRequested: true, SubmittedAt: now, UpdatedAt: now}
			data, _ := jsonMarshal(st)
			if _, err := kv.Create(ctx, key, data); errors.Is(err, jetstream.ErrKeyExists) {
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
		if _, err := kv.Update(ctx, key, data, e.Revision()); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // a worker wrote meanwhile: mark the newer state
		} else if err != nil {
			return nil, fmt.Errorf("record cancel: %w", err)
		}
		return &st, nil
	}
	return nil, errContended("cancel")
}

// startRun resets the checkpoint of tenant's request id to a queued new
// run and returns its number, with a function that puts the previous
// checkpoint back (for a replay whose publish failed). Only failed or
// rejected jobs run again; a replay of a run still queued (its publish
// failed) reuses that run. kv must read from the stream leader.
func startRun(ctx context.Context, kv jetstream.KeyValue, tenant, id string, now time.Time) (int, func(), error) {
	key := jobKey(tenant, id)
	for range 10 {
		e, err := kv.Get(ctx, key)
		prev, rev := JobState{}, uint64(0)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return 0, nil, fmt.Errorf("replay %s: read job: %w", id, err)
		default:
			if err := jsonUnmarshal(e.Value(), &prev); err != nil {
				return 0, nil, err
			}
			rev = e.Revision()
		}
		switch {
		case rev == 0 || prev.Status == StatusFailed || prev.Status == StatusRejected:
		case prev.Status == StatusQueued && prev.Seq == 0 && !prev.CancelRequested:
			return prev.run(), func() {}, nil
		case prev.Done():
			return 0, nil, fmt.Errorf("replay %s: %w with status %s since; submit it under a new id to deploy again", id, ErrFinished, prev.Status)
		default:
			return 0, nil, fmt.Errorf("replay %s: %w (status %s)", id, ErrRunning, prev.Status)
		}
		next := JobState{Version: stateVersion, ID: id, Tenant: tenant, Status: StatusQueued,
			Run: prev.run() + 1, SubmittedAt: now, UpdatedAt: now}
		if rev == 0 {
			next.Run = 1 // rejected before it ever ran
		}
		data, _ := jsonMarshal(next)
		var nrev uint64
		if rev == 0 {
			nrev, err = kv.Create(ctx, key, data)
		} else {
			nrev, err = kv.Update(ctx, key, data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return 0, nil, fmt.Errorf("replay %s: start run: %w", id, err)
		}
		undo := func() {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if rev == 0 {
				_ = kv.Delete(uctx, key, jetstream.LastRevision(nrev))
				return
			}
			old, _ := jsonMarshal(prev)
			_, _ = kv.Update(uctx, key, old, nrev)
		}
		return next.Run, undo, nil
	}
	return 0, nil, errContended("replay " + id)
}

// open reads the job's checkpoint, creating it from init when absent;
// created reports that init was written. With likelyNew (a first
// delivery) it tries the create first, which spares the read in the
// common case and costs one failed create when a checkpoint was written
// before the message (a cancel that came first, a replay).
func open(ctx context.Context, kv jetstream.KeyValue, init JobState, likelyNew bool) (cp *Checkpoint, created bool, err error) {
	key := jobKey(init.Tenant, init.ID)
	if likelyNew {
		data, _ := json.Marshal(init)
		rev, err := kv.Create(ctx, key, data)
		if err == nil {
			return &Checkpoint{kv: kv, key: key, rev: rev, State: init}, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, false, fmt.Errorf("create checkpoint: %w", err)
		}
	}
	for range 3 {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			data, _ := json.Marshal(init)
			rev, cerr := kv.Create(ctx, key, data)
			if errors.Is(cerr, jetstream.ErrKeyExists) {
				continue // another delivery created it first: read theirs
			}
			if cerr != nil {
				return nil, false, fmt.Errorf("create checkpoint: %w", cerr)
			}
			return &Checkpoint{kv: kv, key: key, rev: rev, State: init}, true, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("read checkpoint: %w", err)
		}
		cp := &Checkpoint{kv: kv, key: key, rev: e.Revision()}
		if err := json.Unmarshal(e.Value(), &cp.State); err != nil {
			return nil, false, fmt.Errorf("decode checkpoint %s: %w", key, err)
		}
		return cp, false, nil
	}
	return nil, false, fmt.Errorf("create checkpoint %s: raced repeatedly", key)
}

// save writes the state if nobody else took the job since our last read
// or write. Another worker's claim means our lease is lost: ErrLeaseLost.
// A cancel written meanwhile is not a takeover: it is merged and the write
// retried.
func (c *Checkpoint) save(ctx context.Context, now time.Time) error {
	c.State.UpdatedAt = now
	for range 5 {
		data, err := json.Marshal(c.State)
		if err != nil {
			return fmt.Errorf("encode checkpoint: %w", err)
		}
		rev, err := c.kv.Update(ctx, c.key, data, c.rev)
		if err == nil {
			c.rev = rev
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return ErrLeaseLost
			}
			return fmt.Errorf("save checkpoint: %w", err)
		}
		if err := c.refresh(ctx); err != nil {
			return err
		}
	}
	return ErrLeaseLost
}

// refresh reads the stored state after someone else wrote it. It fails
// with ErrLeaseLost unless we still own the job; otherwise it takes the
// cancel flag from the stored state and its revision for our next write.
func (c *Checkpoint) refresh(ctx context.Context) error {
	e, err := c.kv.Get(ctx, c.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	if e.Revision() <= c.rev {
		// Nothing newer than our own last write (an older revision can only
		// be a stale answer; reads go to the leader, but be safe).
		return nil
	}
	var stored JobState
	if err := json.Unmarshal(e.Value(), &stored); err != nil {
		return fmt.Errorf("decode checkpoint %s: %w", c.key, err)
	}
	if stored.Owner != c.State.Owner || stored.Lease != c.State.Lease || stored.Run != c.State.Run {
		return ErrLeaseLost
	}
	c.State.CancelRequested = c.State.CancelRequested || stored.CancelRequested
	c.rev = e.Revision()
	return nil
}
