package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/deployq/deployq/internal/streamget"
	"github.com/nats-io/nats.go/jetstream"
)

// DLQReason says why a request was dead-lettered; a fixed list, so the
// reasons can label metrics.
type DLQReason string

// Dead-letter reasons.
const (
	DLQReasonRejected      DLQReason = "rejected"       // bad input, never run
	DLQReasonFailed        DLQReason = "failed"         // a permanent error or retries exhausted
	DLQReasonMaxDeliveries DLQReason = "max_deliveries" // the consumer gave up redelivering
)

// DeadLetter is an entry of the DLQ stream: everything needed to see why a
// request failed and to replay it with the same id.
type DeadLetter struct {
	Version int       `json:"version"`
	ID      string    `json:"id"`
	Tenant  string    `json:"tenant"`
	Reason  DLQReason `json:"reason"`
	// Error is the final error.
	Error *EventError `json:"error,omitempty"`
	// Attempts holds every failed attempt's error, oldest first.
	Attempts []AttemptError `json:"attempts,omitempty"`
	// Request is the original message body when it is a JSON object
	// within the request size limit (what Replay runs again).
	Request json.RawMessage `json:"request,omitempty"`
	// RequestRaw holds the first MaxDeadLetterCopy bytes of any other
	// body, and RequestSize and RequestSHA256 describe it whole: a dead
	// letter stays bounded however large or broken the message, and the
	// hash still identifies it.
	RequestRaw    []byte    `json:"requestRaw,omitempty"`
	RequestSize   int       `json:"requestSize"`
	RequestSHA256 string    `json:"requestSha256"`
	Subject       string    `json:"subject"`
	StreamSeq     uint64    `json:"streamSeq"`
	Deliveries    uint64    `json:"deliveries"`
	At            time.Time `json:"at"`
}

// MaxDeadLetterCopy bounds the copy of a body that is not a request
// (not JSON, or too large) kept in its dead letter.
const MaxDeadLetterCopy = 1 << 10

func jsonMarshal(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return data, nil
}

func jsonUnmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

// DeadLetterEntry is a dead letter with its sequence in the DLQ stream.
type DeadLetterEntry struct {
	Seq uint64 `json:"seq"`
	DeadLetter
}

// ErrNoDeadLetter is returned for an id with no dead letter.
var ErrNoDeadLetter = errors.New("no dead letter for this request id")

// DeadLetters returns the dead letters of tenant ("" for every tenant),
// oldest first.
func (c *Client) DeadLetters(ctx context.Context, tenant string) ([]DeadLetterEntry, error) {
	if err := c.adminOnly("read dead letters"); err != nil {
		return nil, err
	}
	subject := dlqPrefix + ">"
	if tenant != "" {
		subject = DLQSubject(tenant)
	}
	msgs, err := streamget.All(ctx, c.dlq, subject)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	out := make([]DeadLetterEntry, 0, len(msgs))
	for _, m := range msgs {
		var e DeadLetterEntry
		if err := jsonUnmarshal(m.Data, &e.DeadLetter); err != nil {
			return nil, err
		}
		e.Seq = m.Seq
		out = append(out, e)
	}
	return out, nil
}

// ErrAmbiguousID is returned when a request id given without its tenant
// names requests of several tenants: ids are scoped by tenant.
var ErrAmbiguousID = errors.New("the id names requests of several tenants; give the tenant")

// DeadLetter returns the latest dead letter of the request id of tenant.
// With tenant "", the id is looked up across tenants, and
// ErrAmbiguousID returned when several have one.
func (c *Client) DeadLetter(ctx context.Context, tenant, id string) (*DeadLetterEntry, error) {
	all, err := c.DeadLetters(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var found *DeadLetterEntry
	for i := len(all) - 1; i >= 0; i-- {
		e := &all[i]
		switch {
		case e.ID != id:
		case found == nil:
			found = e
		case found.Tenant != e.Tenant:
			return nil, fmt.Errorf("dead letter %s: %w (%s, %s)", id, ErrAmbiguousID, found.Tenant, e.Tenant)
		}
	}
	if found == nil {
		return nil, ErrNoDeadLetter
	}
	return found, nil
}

// Replay runs a dead-lettered request of tenant ("" to look the id up
// across tenants) again under the same id: its checkpoint starts a new
// run (fresh steps; resources of the failed run were cleaned up, or are
// adopted again when kept), and its events carry the run number so they
// are not mistaken for the first run's.
func (c *Client) Replay(ctx context.Context, tenant, id string) (*Submitted, error) {
	dl, err := c.DeadLetter(ctx, tenant, id)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", id, err)
	}
	if dl.Request == nil {
		return nil, fmt.Errorf("replay %s: the dead-lettered message is not JSON; it cannot run: %w", id, invalid("", "unreadable request"))
	}
	req, err := DecodeRequest(dl.Request, c.cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("replay %s: the request is invalid and would be rejected again: %w", id, err)
	}
	if req.Tenant != dl.Tenant || req.ID != dl.ID {
		return nil, fmt.Errorf("replay %s: the dead-lettered body names request %s.%s: %w", id, req.Tenant, req.ID, invalid("", "request does not match its subject"))
	}
	if err := c.requireSource(ctx, &req); err != nil {
		return nil, err
	}
	run, undo, err := startRun(ctx, c.jobsLeader, req.Tenant, req.ID, c.now())
	if err != nil {
		return nil, err
	}
	data, err := jsonMarshal(req)
	if err != nil {
		return nil, err
	}
	msg := requestMsg(&req, data)
	msg.Header.Set(HeaderRun, strconv.Itoa(run))
	out := &Submitted{ID: req.ID, Tenant: req.Tenant, Subject: msg.Subject, Run: run}
	ack, err := c.js.PublishMsg(ctx, msg)
	if seq, taken := subjectTaken(err); taken {
		// Retrying a replay that failed half-way: its message is queued.
		out.Sequence, out.Duplicate = seq, true
		return out, nil
	}
	if err != nil {
		undo()
		return nil, fmt.Errorf("replay %s: publish: %w", id, err)
	}
	out.Sequence = ack.Sequence
	return out, nil
}

// ErrSourceExpired means a dead-lettered request's tarball is gone: it can
// only run again if submitted with its source.
var ErrSourceExpired = errors.New("source tarball no longer stored")

// ReplayAll replays every dead-lettered request of tenant ("" for all)
// once per id. Entries that cannot be replayed (running, succeeded since,
// source expired) are skipped, and their errors joined in the result.
func (c *Client) ReplayAll(ctx context.Context, tenant string) ([]*Submitted, error) {
	all, err := c.DeadLetters(ctx, tenant)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []*Submitted
	var errs []error
	for i := len(all) - 1; i >= 0; i-- {
		key := jobKey(all[i].Tenant, all[i].ID)
		if seen[key] || all[i].Request == nil || all[i].ID == "" {
			continue
		}
		seen[key] = true
		sub, err := c.Replay(ctx, all[i].Tenant, all[i].ID)
		if err != nil {
			if ctx.Err() != nil {
				return out, errors.Join(append(errs, err)...)
			}
			errs = append(errs, err) // one bad entry does not stop the rest
			continue
		}
		out = append(out, sub)
	}
	return out, errors.Join(errs...)
}

// requireSource makes sure the tarball of a replayed request is still
// stored and referenced.
func (c *Client) requireSource(ctx context.Context, req *Request) error {
	if err := c.putRef(ctx, SourceRefKey(req)); err != nil {
		return fmt.Errorf("reference source tarball: %w", err)
	}
	_, err := c.sources.Stat(ctx, req.Tenant, req.Source.SHA1)
	if errors.Is(err, ErrSourceNotFound) {
		_ = c.deleteRef(ctx, SourceRefKey(req))
		return fmt.Errorf("replay %s: %w (%s); submit it again with its source", req.ID, ErrSourceExpired, req.Source.SHA1)
	}
	if err != nil {
		return fmt.Errorf("look up source tarball: %w", err)
	}
	return nil
}

// PurgeDeadLetters deletes the dead letters of tenant ("" for all) and
// releases the source tarballs their finished jobs kept for a replay. It
// returns how many entries were deleted.
func (c *Client) PurgeDeadLetters(ctx context.Context, tenant string) (int, error) {
	if err := c.adminOnly("purge dead letters"); err != nil {
		return 0, err
	}
	all, err := c.DeadLetters(ctx, tenant)
	if err != nil {
		return 0, err
	}
	for _, e := range all {
		var req Request
		if e.Request == nil || jsonUnmarshal(e.Request, &req) != nil || req.Source.SHA1 == "" {
			continue
		}
		if st, err := c.readState(ctx, e.Tenant, e.ID); err == nil && st != nil && !st.Done() {
			continue // replayed and running: it still needs its tarball
		}
		req.Tenant, req.ID = e.Tenant, e.ID
		_ = c.deleteRef(ctx, SourceRefKey(&req))
	}
	if len(all) == 0 {
		return 0, nil
	}
	// Up to the last entry listed: one that arrives meanwhile stays, its
	// tarball still referenced.
	opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSequence(all[len(all)-1].Seq + 1)}
	if tenant != "" {
		opts = append(opts, jetstream.WithPurgeSubject(DLQSubject(tenant)))
	}
	if err := c.dlq.Purge(ctx, opts...); err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	return len(all), nil
}
