package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

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
	reason     jobs.DLQReason
	final      *jobs.EventError
	attempts   []jobs.AttemptError
}

func letterOf(msg jetstream.Msg, meta *jetstream.MsgMetadata, tenant, id string, reason jobs.DLQReason, final *jobs.EventError, attempts []jobs.AttemptError) letter {
	return letter{subject: msg.Subject(), data: msg.Data(), seq: meta.Sequence.Stream, deliveries: meta.NumDelivered,
		tenant: tenant, id: id, reason: reason, final: final, attempts: attempts}
}

func (w *Worker) deadLetter(ctx context.Context, l letter) error {
	dl := jobs.DeadLetter{
		Version: 1, ID: l.id, Tenant: l.tenant, Reason: l.reason, Error: l.final, Attempts: l.attempts,
		Subject: l.subject, StreamSeq: l.seq, Deliveries: l.deliveries, At: w.now().UTC(),
	}
	dl.RequestSize, dl.RequestSHA256 = len(l.data), sha256Hex(l.data)
	if len(l.data) <= w.cfg.Limits.WithDefaults().MaxRequestBytes && len(l.data) > 0 && l.data[0] == '{' && json.Valid(l.data) {
		dl.Request = json.RawMessage(l.data)
	} else {
		dl.RequestRaw = l.data[:min(len(l.data), jobs.MaxDeadLetterCopy)]
	}
	data, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	// One dead letter per stream message, however often this runs.
	_, err = w.js.Publish(ctx, jobs.DLQSubject(l.tenant), data, jetstream.WithMsgID("dlq."+strconv.FormatUint(l.seq, 10)))
	if err != nil {
		return fmt.Errorf("publish dead letter: %w", err)
	}
	w.m.DeadLettered(string(l.reason))
	return nil
}
