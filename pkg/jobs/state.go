package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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
	// DeploymentURL is the deployment's own generated URL (behind
	// Vercel's login under its Standard Protection); URL is the public
	// production domain handed to the end user. A checkpoint written by an
	// earlier version has the URL it handed out in DeploymentURL only.
	DeploymentURL string `json:"deploymentUrl,omitempty"`
	URL           string `json:"url,omitempty"`
	// DeployedAt is when this job saw its deployment created (or found
	// it): a resumed wait counts the build time from there, not from the
	// resumption.
	DeployedAt time.Time `json:"deployedAt,omitzero"`
	ClaimCode  string    `json:"claimCode,omitempty"`
	// ClaimIssuedAt is when ClaimCode was issued: now for a fresh code,
	// earlier for the app's code handed out again.
	ClaimIssuedAt time.Time `json:"claimIssuedAt,omitzero"`

	// App is the app the job deploys a version of (Request.AppID), and
	// AppVersion the version's number, set once the job holds the app
	// (1 creates its project and database). Domain is the app's
	// production domain under the platform's suffix, if any.
	App        string `json:"app,omitempty"`
	AppVersion int    `json:"appVersion,omitempty"`
	Domain     string `json:"domain,omitempty"`

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

// PublicURL is the URL to hand the end user: URL, or, in a checkpoint of
// an earlier version, the one it recorded.
func (s *JobState) PublicURL() string {
	if s.URL != "" {
		return s.URL
	}
	return s.DeploymentURL
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
