package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
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

// DeadLetter returns the latest dead letter of a request id.
func (c *Client) DeadLetter(ctx context.Context, id string) (*DeadLetterEntry, error) {
	all, err := c.DeadLetters(ctx, "")
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].ID == id {
			return &all[i], nil
		}
	}
	return nil, ErrNoDeadLetter
}

// Replay runs a dead-lettered request again under the same id: its
// checkpoint starts a new run (fresh steps; resources of the failed run
// were cleaned up, or are adopted again when kept), and its events carry
// the run number so they are not mistaken for the first run's.
func (c *Client) Replay(ctx context.Context, id string) (*Submitted, error) {
	dl, err := c.DeadLetter(ctx, id)
	if err != nil {
		return nil, err
	}
	if dl.Request == nil {
		return nil, fmt.Errorf("replay %s: the dead-lettered message is not JSON; it cannot run: %w", id, invalid("", "unreadable request"))
	}
	req, err := DecodeRequest(dl.Request, c.cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("replay %s: the request is invalid and would be rejected again: %w", id, err)
	}
	if err := c.requireSource(ctx, &req); err != nil {
		return nil, err
	}
	run, err := c.startRun(ctx, &req)
	if err != nil {
		return nil, err
	}
	data, err := jsonMarshal(req)
	if err != nil {
		return nil, err
	}
	msg := nats.NewMsg(RequestSubject(req.Tenant))
	msg.Data = data
	msg.Header.Set(HeaderRun, strconv.Itoa(run))
	ack, err := c.js.PublishMsg(ctx, msg, jetstream.WithMsgID(req.ID+".run"+strconv.Itoa(run)))
	if err != nil {
		return nil, fmt.Errorf("replay %s: publish: %w", id, err)
	}
	return &Submitted{ID: req.ID, Tenant: req.Tenant, Subject: msg.Subject, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// ReplayAll replays every dead-lettered request of tenant ("" for all)
// whose job is not running, once per id.
func (c *Client) ReplayAll(ctx context.Context, tenant string) ([]*Submitted, error) {
	all, err := c.DeadLetters(ctx, tenant)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []*Submitted
	for i := len(all) - 1; i >= 0; i-- {
		id := all[i].ID
		if seen[id] || all[i].Request == nil {
			continue
		}
		seen[id] = true
		sub, err := c.Replay(ctx, id)
		if errors.Is(err, ErrRunning) {
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, sub)
	}
	return out, nil
}

// requireSource makes sure the tarball of a replayed request is still
// stored and referenced.
func (c *Client) requireSource(ctx context.Context, req *Request) error {
	if _, err := c.refs.Put(ctx, refKey(req), nil); err != nil {
		return fmt.Errorf("reference source tarball: %w", err)
	}
	info, err := c.sources.GetInfo(ctx, req.Source.SHA1)
	if errors.Is(err, jetstream.ErrObjectNotFound) || (err == nil && info.Deleted) {
		_ = c.refs.Delete(ctx, refKey(req))
		return fmt.Errorf("replay %s: its source tarball %s is no longer stored; submit it again with its source", req.ID, req.Source.SHA1)
	}
	if err != nil {
		return fmt.Errorf("look up source tarball: %w", err)
	}
	return nil
}

// startRun resets the request's checkpoint to a queued new run and
// returns its number.
func (c *Client) startRun(ctx context.Context, req *Request) (int, error) {
	key := jobKey(req.Tenant, req.ID)
	for range 10 {
		e, err := c.jobs.Get(ctx, key)
		prev, rev := JobState{}, uint64(0)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return 0, fmt.Errorf("read job: %w", err)
		default:
			if err := jsonUnmarshal(e.Value(), &prev); err != nil {
				return 0, err
			}
			rev = e.Revision()
			if !prev.Done() {
				return 0, fmt.Errorf("replay %s: %w (status %s)", req.ID, ErrRunning, prev.Status)
			}
		}
		next := JobState{Version: stateVersion, ID: req.ID, Tenant: req.Tenant, Status: StatusQueued,
			Run: prev.run() + 1, SubmittedAt: c.now(), UpdatedAt: c.now()}
		if rev == 0 {
			next.Run = 1 // rejected before it ever ran
		}
		data, _ := jsonMarshal(next)
		if rev == 0 {
			_, err = c.jobs.Create(ctx, key, data)
		} else {
			_, err = c.jobs.Update(ctx, key, data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("start run: %w", err)
		}
		return next.Run, nil
	}
	return 0, errors.New("replay: the job's checkpoint kept changing; try again")
}

// PurgeDeadLetters deletes the dead letters of tenant ("" for all) and
// releases the source tarballs their finished jobs kept for a replay. It
// returns how many entries were deleted.
func (c *Client) PurgeDeadLetters(ctx context.Context, tenant string) (int, error) {
	all, err := c.DeadLetters(ctx, tenant)
	if err != nil {
		return 0, err
	}
	for _, e := range all {
		var req Request
		if e.Request == nil || jsonUnmarshal(e.Request, &req) != nil || req.Source.SHA1 == "" {
			continue
		}
		if st, err := ReadState(ctx, c.jobs, e.Tenant, e.ID); err == nil && st != nil && !st.Done() {
			continue // replayed and running: it still needs its tarball
		}
		req.Tenant, req.ID = e.Tenant, e.ID
		_ = c.refs.Delete(ctx, refKey(&req))
	}
	opts := []jetstream.StreamPurgeOpt{}
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
