package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go/jetstream"
)

// Status is where a job's checkpoint stands. A job is queued (a
// checkpoint written before any worker took its message), running, or
// done in one of four terminal statuses.
type Status string

// Status values of a job checkpoint.
const (
	// StatusQueued is a checkpoint written before any worker took the
	// request: a cancel that came first, or a replay waiting for its
	// message.
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusRejected  Status = "rejected"
	StatusCancelled Status = "cancelled"
)

// JobState is a job's checkpoint in the jobs KV bucket. It records every id
// a step created, so a redelivered job (on any worker, after a crash at any
// instant) resumes at the first unfinished step and never creates a second
// project, database or deployment.
type JobState struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	Tenant  string `json:"tenant"`
	Status  Status `json:"status"`
	// Step is the last step completed; empty before the first.
	Step Step `json:"step,omitempty"`

	ProjectID       string `json:"projectId,omitempty"`
	ProjectName     string `json:"projectName,omitempty"`
	AuthorizationID string `json:"authorizationId,omitempty"`
	StoreID         string `json:"storeId,omitempty"`
	StoreName       string `json:"storeName,omitempty"`
	DeploymentID    string `json:"deploymentId,omitempty"`
	DeploymentURL   string `json:"deploymentUrl,omitempty"`
	// DeployedAt is when this job saw its deployment created (or found
	// it): a resumed wait counts the build time from there, not from the
	// resumption.
	DeployedAt time.Time `json:"deployedAt,omitzero"`
	ClaimCode  string    `json:"claimCode,omitempty"`

	// Owner and Lease fence workers: a worker takes a job by writing itself
	// as owner with a higher lease through compare-and-set, and every later
	// write of its own is conditional on the revision it last wrote, so a
	// worker whose lease lapsed cannot act after another took over.
	Owner string `json:"owner,omitempty"`
	Lease uint64 `json:"lease"`

	// Attempts counts failed attempts (rate-limit waits excluded).
	Attempts int `json:"attempts"`
	// Errors keeps each failed attempt's error for the DLQ.
	Errors []AttemptError `json:"errors,omitempty"`

	// Seq is the requests-stream sequence of the message that owns the
	// job; another message with the same id is a duplicate. 0 while the
	// job waits for its message (queued).
	Seq uint64 `json:"seq"`
	// Run counts runs of the request: 1, then one more per replay from
	// the DLQ. Event ids carry it, so a replay's events are not taken for
	// duplicates of the first run's.
	Run int `json:"run,omitempty"`
	// CancelRequested is set by Client.Cancel; the job stops at once,
	// cleans up and ends cancelled.
	CancelRequested bool `json:"cancelRequested,omitempty"`

	SubmittedAt time.Time `json:"submittedAt"`
	StartedAt   time.Time `json:"startedAt"`
	UpdatedAt   time.Time `json:"updatedAt"`

	// Terminal is the terminal event, written before it is published so a
	// crash between the two republishes the same event (deduplicated).
	Terminal *Event `json:"terminal,omitempty"`
	// Published is set once the terminal event is in the events stream.
	Published bool `json:"published,omitempty"`
}

// AttemptError is one failed attempt, as kept in the checkpoint and the DLQ.
type AttemptError struct {
	At      time.Time `json:"at"`
	Step    Step      `json:"step"`
	Class   string    `json:"class"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
}

// Done reports whether the job has reached a terminal status.
func (s *JobState) Done() bool { return s.Status.Done() }

// Done reports whether s is a terminal status.
func (s Status) Done() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusRejected, StatusCancelled:
		return true
	}
	return false
}

// run is the job's run number, 1 before any replay.
func (s *JobState) run() int { return max(s.Run, 1) }

// stateVersion is the schema of JobState.
const stateVersion = 1

// maxKeptErrors bounds the checkpoint size when a step fails repeatedly.
const maxKeptErrors = 20

// ErrLeaseLost means another worker owns the job now; the caller must stop
// acting on it and must not ack the message.
var ErrLeaseLost = errors.New("job lease lost to another worker")

// checkpoint is one worker's handle on a job state: the state plus the
// KV revision it last read or wrote.
type checkpoint struct {
	kv    jetstream.KeyValue
	key   string
	rev   uint64
	state JobState
}

// loadOrCreate reads the job's checkpoint, creating it from init when
// absent; created reports that init was written. With likelyNew (a first
// delivery) it tries the create first, which spares the read in the
// common case and costs one failed create when a checkpoint was written
// before the message (a cancel that came first, a replay).
func loadOrCreate(ctx context.Context, kv jetstream.KeyValue, init JobState, likelyNew bool) (cp *checkpoint, created bool, err error) {
	key := jobKey(init.Tenant, init.ID)
	if likelyNew {
		data, _ := json.Marshal(init)
		rev, err := kv.Create(ctx, key, data)
		if err == nil {
			return &checkpoint{kv: kv, key: key, rev: rev, state: init}, true, nil
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
			return &checkpoint{kv: kv, key: key, rev: rev, state: init}, true, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("read checkpoint: %w", err)
		}
		cp := &checkpoint{kv: kv, key: key, rev: e.Revision()}
		if err := json.Unmarshal(e.Value(), &cp.state); err != nil {
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
func (c *checkpoint) save(ctx context.Context, now time.Time) error {
	c.state.UpdatedAt = now
	for range 5 {
		data, err := json.Marshal(c.state)
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
func (c *checkpoint) refresh(ctx context.Context) error {
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
	if stored.Owner != c.state.Owner || stored.Lease != c.state.Lease || stored.Run != c.state.Run {
		return ErrLeaseLost
	}
	c.state.CancelRequested = c.state.CancelRequested || stored.CancelRequested
	c.rev = e.Revision()
	return nil
}

// verify is the fence before a side effect: it fails with ErrLeaseLost
// when another worker took the job over since our last write, so a worker
// that was paused past its lease never calls the API for a job it no
// longer owns. It costs one KV read.
func (c *checkpoint) verify(ctx context.Context) error { return c.refresh(ctx) }

// claim makes this worker the job's owner with a new lease.
func (c *checkpoint) claim(ctx context.Context, owner string, now time.Time) error {
	c.state.Owner = owner
	c.state.Lease++
	if c.state.StartedAt.IsZero() {
		c.state.StartedAt = now
	}
	return c.save(ctx, now)
}

// failedAttempt records a failed attempt of step in st, counted unless
// it was a rate-limit refusal (waiting for the budget is not failing), and
// says what comes next: exhausted when the step has used its attempts,
// else the wait before the next one, the API's Retry-After or the backoff,
// whichever is longer; capped when an announced rate-limit wait was longer
// than maxRateLimitWait and was cut to it. The worker and Pipeline.Deploy
// retry by the same rules through it.
func failedAttempt(st *JobState, step Step, err error, d vercel.Decision, maxAttempts int,
	maxRateLimitWait time.Duration, bo backoff.BackOff, now time.Time) (wait time.Duration, exhausted, capped bool) {
	if !d.RateLimited {
		st.Attempts++
	}
	st.Errors = append(st.Errors, AttemptError{At: now, Step: step, Class: d.Class.String(), Reason: d.Reason, Message: err.Error()})
	if n := len(st.Errors); n > maxKeptErrors {
		st.Errors = st.Errors[n-maxKeptErrors:]
	}
	if !d.RateLimited && st.Attempts >= maxAttempts {
		return 0, true, false
	}
	wait = d.RetryAfter
	if d.RateLimited {
		if wait > maxRateLimitWait {
			return maxRateLimitWait, false, true
		}
		return wait, false, false
	}
	return max(wait, bo.NextBackOff()), false, false
}

// ReadState returns a job's checkpoint, or nil when the job has not started.
func ReadState(ctx context.Context, kv jetstream.KeyValue, tenant, id string) (*JobState, error) {
	e, err := kv.Get(ctx, jobKey(tenant, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s JobState
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return nil, fmt.Errorf("decode checkpoint: %w", err)
	}
	return &s, nil
}
