package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Dead-letter reasons; a fixed list, so they can label metrics.
const (
	DLQReasonRejected      = "rejected"       // bad input, never run
	DLQReasonFailed        = "failed"         // a permanent error or retries exhausted
	DLQReasonMaxDeliveries = "max_deliveries" // the consumer gave up redelivering
)

// DeadLetter is an entry of the DLQ stream: everything needed to see why a
// request failed and to replay it with the same id.
type DeadLetter struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	Tenant  string `json:"tenant"`
	Reason  string `json:"reason"`
	// Error is the final error.
	Error *EventError `json:"error,omitempty"`
	// Attempts holds every failed attempt's error, oldest first.
	Attempts []AttemptError `json:"attempts,omitempty"`
	// Request is the original message body when it is JSON; RequestRaw
	// holds it otherwise, so nothing a producer sent is lost.
	Request    json.RawMessage `json:"request,omitempty"`
	RequestRaw []byte          `json:"requestRaw,omitempty"`
	Subject    string          `json:"subject"`
	StreamSeq  uint64          `json:"streamSeq"`
	Deliveries uint64          `json:"deliveries"`
	At         time.Time       `json:"at"`
}

// letter is what a dead letter is written from: the request message and
// why it could not end any other way.
type letter struct {
	subject    string
	data       []byte
	seq        uint64
	deliveries uint64
	tenant, id string
	reason     string
	final      *EventError
	attempts   []AttemptError
}

func letterOf(msg jetstream.Msg, meta *jetstream.MsgMetadata, tenant, id, reason string, final *EventError, attempts []AttemptError) letter {
	return letter{subject: msg.Subject(), data: msg.Data(), seq: meta.Sequence.Stream, deliveries: meta.NumDelivered,
		tenant: tenant, id: id, reason: reason, final: final, attempts: attempts}
}

func (w *Worker) deadLetter(ctx context.Context, l letter) error {
	dl := DeadLetter{
		Version: 1, ID: l.id, Tenant: l.tenant, Reason: l.reason, Error: l.final, Attempts: l.attempts,
		Subject: l.subject, StreamSeq: l.seq, Deliveries: l.deliveries, At: w.now().UTC(),
	}
	if json.Valid(l.data) {
		dl.Request = json.RawMessage(l.data)
	} else {
		dl.RequestRaw = l.data
	}
	data, err := jsonMarshal(dl)
	if err != nil {
		return err
	}
	// One dead letter per stream message, however often this runs.
	_, err = w.js.Publish(ctx, DLQSubject(l.tenant), data, jetstream.WithMsgID("dlq."+strconv.FormatUint(l.seq, 10)))
	if err != nil {
		return fmt.Errorf("publish dead letter: %w", err)
	}
	w.m.DeadLettered(l.reason)
	return nil
}

// idInJSON digs the id out of a request too broken to decode, so its
// rejection reaches the subject the producer watches.
var idInJSON = regexp.MustCompile(`"id"\s*:\s*"([A-Za-z0-9_-]{1,128})"`)

// bestEffortID is the request's id if its body names a valid one, else
// seq-<stream sequence>.
func bestEffortID(data []byte, seq uint64) string {
	if m := idInJSON.FindSubmatch(data); m != nil {
		return string(m[1])
	}
	return "seq-" + strconv.FormatUint(seq, 10)
}

// reject dead-letters a request that cannot be run, publishes a rejected
// event with the reason and terminates the message so it never loops.
func (w *Worker) reject(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, verr *ValidationError) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), natsOpTimeout)
	defer cancel()
	tenant := subjectTenant(msg.Subject())
	id := bestEffortID(msg.Data(), meta.Sequence.Stream)
	log := w.log.With("request_id", id, "tenant", tenant, "step", stepValidate)
	final := &EventError{Code: "invalid_request", Field: verr.Field, Message: verr.Error()}
	if err := w.deadLetter(ctx, letterOf(msg, meta, tenant, id, DLQReasonRejected, final, nil)); err != nil {
		log.Warn("rejection not dead-lettered; handing back", "err", err)
		w.handBack(msg, log, w.cfg.PullWait)
		return
	}
	// The event id is per message: a malformed message that reuses the id
	// of a real job must not be swallowed by that job's terminal event.
	ev := newEvent(TypeRejected, "rejected."+strconv.FormatUint(meta.Sequence.Stream, 10), w.now(), EventData{
		RequestID: id, Tenant: tenant, Attempt: int(meta.NumDelivered), Error: final,
	})
	if err := w.publishEvent(ctx, tenant, ev); err != nil {
		log.Warn("rejection event not published; handing back", "err", err)
		w.handBack(msg, log, w.cfg.PullWait)
		return
	}
	if err := msg.TermWithReason("rejected: " + verr.Error()); err != nil {
		log.Warn("terminating the rejected request failed", "err", err)
	}
	log.Warn("request rejected", "field", verr.Field, "reason", verr.Reason)
}

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
