package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The safety net under the worker's own dead-lettering: a request whose
// deliveries all ended without an outcome (workers crashed on it, or
// handed it back, MaxDeliver times) stays in the work-queue stream but is
// never delivered again. JetStream announces it with a MAX_DELIVERIES
// advisory; one worker of the fleet (a queue group) moves it to the DLQ
// with a failed event, cleans up what the job created and deletes it from
// the requests stream.

// The advisories of every consumer of the requests stream: each tenant's,
// and the shared one.
const maxDeliveriesSubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + jobs.StreamRequests + ".*"

type maxDeliveriesAdvisory struct {
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

func (w *Worker) subscribeMaxDeliveries() (*nats.Subscription, error) {
	return w.js.Conn().QueueSubscribe(maxDeliveriesSubject, "deployq-max-deliveries", func(m *nats.Msg) {
		var adv maxDeliveriesAdvisory
		if json.Unmarshal(m.Data, &adv) != nil || adv.StreamSeq == 0 {
			return
		}
		// Off the subscription's goroutine: this makes several round trips.
		go func() {
			if err := w.deadLetterExhausted(adv); err != nil {
				w.log.Error("request out of deliveries not moved to the DLQ", "stream_seq", adv.StreamSeq, "err", err)
			}
		}()
	})
}

func (w *Worker) deadLetterExhausted(adv maxDeliveriesAdvisory) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw, err := w.assets.Requests.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // settled meanwhile, or already moved by another worker
	}
	if err != nil {
		return fmt.Errorf("read request %d: %w", adv.StreamSeq, err)
	}
	// Whose request it is, as its subject proves (see reject.go).
	tenant, id := jobs.RequestOrigin(raw.Subject)
	log := w.log.With("request_id", id, "tenant", tenant, "stream_seq", adv.StreamSeq)
	final := &jobs.EventError{Code: "max_deliveries", Message: fmt.Sprintf(
		"delivered %d times without an outcome (each worker died or gave it back); moved to the dead-letter stream", adv.Deliveries)}

	var attempts []jobs.AttemptError
	var cp *jobs.Checkpoint // the job's, when it still needs its failed event published
	if id != "" {
		c, errs, stray, err := w.failExhausted(ctx, tenant, id, adv.StreamSeq, final)
		if err != nil {
			return err
		}
		cp, attempts = c, errs
		if stray {
			id = "" // this message's dead letter, not the request's
		}
	}
	if tenant == "" {
		tenant = unattributedDLQ
	}
	// The step the job was stuck at, once failExhausted has read it.
	log = log.With("step", cmp.Or(string(final.Step), phaseStart))
	if err := w.deadLetter(ctx, letter{subject: raw.Subject, data: raw.Data, seq: adv.StreamSeq, deliveries: adv.Deliveries,
		tenant: tenant, id: id, reason: jobs.DLQReasonMaxDeliveries, final: final, attempts: attempts}); err != nil {
		return err
	}
	if cp != nil {
		if err := w.publishEvent(ctx, *cp.State.Terminal); err != nil {
			return err
		}
		if err := cp.MarkPublished(ctx, w.now()); err != nil {
			log.Warn("checkpoint not updated after the failed event", "err", err)
		}
	}
	if err := w.assets.Requests.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete request %d: %w", adv.StreamSeq, err)
	}
	log.Warn("request ran out of deliveries: moved to the DLQ")
	return nil
}

// failExhausted records the job as failed (fencing out whoever held its
// last delivery) and cleans up what it created. It returns the job's
// checkpoint, whose failed event is still to be published (nil when the
// job already had an outcome), and the attempts' errors for the dead
// letter.
//
// A checkpoint owned by another message means this one is a stray (a
// duplicate of a request that has its job): stray is true, and the job is
// left alone.
func (w *Worker) failExhausted(ctx context.Context, tenant, id string, seq uint64, final *jobs.EventError) (cp *jobs.Checkpoint, attempts []jobs.AttemptError, stray bool, err error) {
	cp, done, stray, err := jobs.TakeOverExhausted(ctx, w.assets.Jobs, tenant, id, seq, w.now())
	switch {
	case err != nil:
		return nil, nil, false, err
	case stray:
		return nil, nil, true, nil
	case done != nil:
		return nil, done.Errors, false, nil
	}
	st := &cp.State
	final.Step = w.pipeline.stepAfter(st.Step)
	ev := st.Event(jobs.TypeFailed, final.Step, 0, w.now())
	ev.Data.Error = final
	if err := cp.Decide(ctx, ev, w.now()); err != nil {
		return nil, nil, false, err
	}
	cleaned, cerrs := w.pipeline.compensate(ctx, st)
	for _, e := range cerrs {
		w.log.Warn("clean-up of a request out of deliveries incomplete",
			"request_id", id, "tenant", tenant, "step", final.Step, "err", e)
	}
	if err := cp.End(ctx, cleaned, w.now()); err != nil {
		return nil, nil, false, err
	}
	return cp, st.Errors, false, nil
}
