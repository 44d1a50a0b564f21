package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

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

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// letter is what a dead letter is written from: the request message and
// why it could not end any other way.
type letter struct {
	subject    string
	data       []byte
	seq        uint64
	deliveries uint64
	tenant, id string
	reason     DLQReason
	final      *EventError
	attempts   []AttemptError
}

func letterOf(msg jetstream.Msg, meta *jetstream.MsgMetadata, tenant, id string, reason DLQReason, final *EventError, attempts []AttemptError) letter {
	return letter{subject: msg.Subject(), data: msg.Data(), seq: meta.Sequence.Stream, deliveries: meta.NumDelivered,
		tenant: tenant, id: id, reason: reason, final: final, attempts: attempts}
}

func (w *Worker) deadLetter(ctx context.Context, l letter) error {
	dl := DeadLetter{
		Version: 1, ID: l.id, Tenant: l.tenant, Reason: l.reason, Error: l.final, Attempts: l.attempts,
		Subject: l.subject, StreamSeq: l.seq, Deliveries: l.deliveries, At: w.now().UTC(),
	}
	dl.RequestSize, dl.RequestSHA256 = len(l.data), sha256Hex(l.data)
	if len(l.data) <= w.cfg.Limits.withDefaults().MaxRequestBytes && len(l.data) > 0 && l.data[0] == '{' && json.Valid(l.data) {
		dl.Request = json.RawMessage(l.data)
	} else {
		dl.RequestRaw = l.data[:min(len(l.data), MaxDeadLetterCopy)]
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
	w.m.DeadLettered(string(l.reason))
	return nil
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
