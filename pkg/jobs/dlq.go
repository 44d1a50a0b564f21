package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

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
	msgs, err := readStored(ctx, c.dlq, subject)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	out := make([]DeadLetterEntry, 0, len(msgs))
	for _, m := range msgs {
		var e DeadLetterEntry
		if err := jsonUnmarshal(m.data, &e.DeadLetter); err != nil {
			return nil, err
		}
		e.Seq = m.seq
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
	run, undo, err := c.startRun(ctx, &req)
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
	if err := c.putRef(ctx, refKey(req)); err != nil {
		return fmt.Errorf("reference source tarball: %w", err)
	}
	_, err := c.sources.Stat(ctx, req.Tenant, req.Source.SHA1)
	if errors.Is(err, ErrSourceNotFound) {
		_ = c.deleteRef(ctx, refKey(req))
		return fmt.Errorf("replay %s: %w (%s); submit it again with its source", req.ID, ErrSourceExpired, req.Source.SHA1)
	}
	if err != nil {
		return fmt.Errorf("look up source tarball: %w", err)
	}
	return nil
}

// startRun resets the request's checkpoint to a queued new run and
// returns its number, with a function that puts the previous checkpoint
// back (for a replay whose publish failed). Only failed or rejected jobs
// run again; a replay of a run still queued (its publish failed) reuses
// that run.
func (c *Client) startRun(ctx context.Context, req *Request) (int, func(), error) {
	key := jobKey(req.Tenant, req.ID)
	for range 10 {
		e, err := c.jobsLeader.Get(ctx, key)
		prev, rev := JobState{}, uint64(0)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return 0, nil, fmt.Errorf("replay %s: read job: %w", req.ID, err)
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
			return 0, nil, fmt.Errorf("replay %s: %w with status %s since; submit it under a new id to deploy again", req.ID, ErrFinished, prev.Status)
		default:
			return 0, nil, fmt.Errorf("replay %s: %w (status %s)", req.ID, ErrRunning, prev.Status)
		}
		next := JobState{Version: stateVersion, ID: req.ID, Tenant: req.Tenant, Status: StatusQueued,
			Run: prev.run() + 1, SubmittedAt: c.now(), UpdatedAt: c.now()}
		if rev == 0 {
			next.Run = 1 // rejected before it ever ran
		}
		data, _ := jsonMarshal(next)
		var nrev uint64
		if rev == 0 {
			nrev, err = c.jobs.Create(ctx, key, data)
		} else {
			nrev, err = c.jobs.Update(ctx, key, data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return 0, nil, fmt.Errorf("replay %s: start run: %w", req.ID, err)
		}
		undo := func() {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if rev == 0 {
				_ = c.jobs.Delete(uctx, key, jetstream.LastRevision(nrev))
				return
			}
			old, _ := jsonMarshal(prev)
			_, _ = c.jobs.Update(uctx, key, old, nrev)
		}
		return next.Run, undo, nil
	}
	return 0, nil, fmt.Errorf("replay %s: the job's checkpoint kept changing; try again", req.ID)
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
		_ = c.deleteRef(ctx, refKey(&req))
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

// stored is one message read back from a stream.
type stored struct {
	subject string
	data    []byte
	seq     uint64
}

// readStored reads every message of a limits-retention stream on subject
// stored now, oldest first.
func readStored(ctx context.Context, s jetstream.Stream, subject string) ([]stored, error) {
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, err
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	if total == 0 {
		return nil, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return nil, err
	}
	out := make([]stored, 0, total)
	for uint64(len(out)) < total {
		batch, err := cons.Fetch(int(min(total-uint64(len(out)), 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			out = append(out, stored{subject: m.Subject(), data: m.Data(), seq: meta.Sequence.Stream})
			got++
		}
		if got == 0 {
			if err := batch.Error(); err != nil {
				return nil, err
			}
			break // messages expired or were purged meanwhile
		}
	}
	return out, nil
}

// ReadEvents returns the stored events on subject (a request's, a
// tenant's with TenantEvents, or AllEvents), oldest first.
func ReadEvents(ctx context.Context, js jetstream.JetStream, subject string) ([]Event, error) {
	s, err := js.Stream(ctx, StreamEvents)
	if err != nil {
		return nil, bindErr("stream "+StreamEvents, err)
	}
	msgs, err := readStored(ctx, s, subject)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		ev, err := DecodeEvent(m.data)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}
