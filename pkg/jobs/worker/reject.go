package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/deployq/deployq/internal/clip"
	"github.com/deployq/deployq/internal/streamget"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

// A request that cannot run is rejected: dead-lettered, answered with a
// rejected event, and terminated so it never comes back. Whose request it
// was is taken from what the message proves, never from its body: the
// subject's tenant token is the lane the publisher's NATS permissions
// allowed, and the id token is an id in that lane. A body may name any
// id, and believing it would let a garbled message end someone else's
// live request.
//
// The first message of an id decides its outcome, whether it runs or is
// rejected: a rejection records the id's checkpoint as rejected, so a
// later message of the same id is a duplicate (acked unrun), and a
// message that arrives when the id's checkpoint exists already (a job
// running or ended) is a stray: dead-lettered without an event, so its
// request keeps exactly one terminal event.

// unattributedDLQ is the dead-letter token of a message whose subject
// names no valid tenant (an operator's publish on a wildcard, say): no
// tenant may read it. No tenant name starts with "_", so none has this one.
const unattributedDLQ = "_unattributed"

// unattributedToken files the rejection of a message that names a tenant
// but no id under its stream sequence. ':' is in no request id, so the
// token never collides with a request's subject.
func unattributedToken(seq uint64) string { return "seq:" + strconv.FormatUint(seq, 10) }

// reject ends a request message that cannot run (see the note above).
func (w *Worker) reject(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, verr *jobs.ValidationError) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), natsOpTimeout)
	defer cancel()
	tenant, id := jobs.RequestOrigin(msg.Subject())
	seq := meta.Sequence.Stream
	log := w.log.With("request_id", id, "tenant", tenant, "step", phaseValidate, "stream_seq", seq)
	final := &jobs.EventError{Code: jobs.CodeInvalidRequest, Field: verr.Field, Message: verr.Error()}
	var ev *jobs.Event
	stray := false
	switch {
	case tenant == "":
		// Nobody to tell: the dead letter is for operators.
	case id == "":
		// No request to name: the event is filed under the message's
		// sequence instead.
		token := unattributedToken(seq)
		e := (&jobs.JobState{Tenant: tenant}).Event(jobs.TypeRejected, "", int(meta.NumDelivered), w.now())
		e.ID, e.Subject, e.Data.Error = tenant+"."+token, token, final
		ev = &e
	default:
		e := (&jobs.JobState{ID: id, Tenant: tenant}).Event(jobs.TypeRejected, "", int(meta.NumDelivered), w.now())
		e.Data.Error = final
		var err error
		if stray, err = w.recordRejection(ctx, tenant, id, delivery(msg, meta), &e); err != nil {
			log.Warn("rejection not recorded; handing back", "err", err)
			w.handBack(msg, log, w.cfg.PullWait)
			return
		}
		if !stray {
			ev = &e
		}
	}
	l := letterOf(msg, meta, tenant, id, jobs.DLQReasonRejected, final, nil)
	if tenant == "" {
		l.tenant = unattributedDLQ
	}
	if stray {
		// The dead letter is this message's, not the request's: without
		// the id, a replay of the request finds its own dead letter.
		l.id = ""
		final.Message = "a request with this id exists already; this message was not run: " + final.Message
	}
	if err := w.deadLetter(ctx, l); err != nil {
		log.Warn("rejection not dead-lettered; handing back", "err", err)
		w.handBack(msg, log, w.cfg.PullWait)
		return
	}
	if ev != nil {
		if err := w.publishEvent(ctx, *ev); err != nil {
			log.Warn("rejection event not published; handing back", "err", err)
			w.handBack(msg, log, w.cfg.PullWait)
			return
		}
	}
	if err := msg.TermWithReason(clip.String("rejected: "+verr.Error(), clip.Reason)); err != nil {
		log.Warn("terminating the rejected request failed", "err", err)
	}
	log.Warn("request rejected", "field", verr.Field, "reason", verr.Reason, "stray", stray)
}

// recordRejection writes the rejected checkpoint of tenant's request id,
// unless the id has one already, or an earlier message of the id is
// still in the stream: then the message is a stray. Workers run messages
// concurrently, so without the second check a garbled copy published
// after a valid request could be decided first and spend its id. A
// checkpoint this very message wrote (a redelivery after a crash) is not
// a stray's: ev becomes the event it recorded.
func (w *Worker) recordRejection(ctx context.Context, tenant, id string, d jobs.Delivery, ev *jobs.Event) (stray bool, err error) {
	// An id has two subjects, its interactive and its batch one.
	for _, subject := range []string{jobs.RequestSubject(tenant, id), jobs.BatchRequestSubject(tenant, id)} {
		first, err := streamget.First(ctx, w.js.Conn(), jobs.StreamRequests, subject, jetstream.ErrMsgNotFound)
		switch {
		case err == nil && first.Seq < d.Seq:
			return true, nil
		case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound):
			return false, fmt.Errorf("record rejection: %w", err)
		}
	}
	existing, created, err := jobs.RecordRejection(ctx, w.assets.Jobs, tenant, id, d, *ev, w.now())
	if err != nil || created {
		return false, err
	}
	if existing.Seq == d.Seq && existing.Status == jobs.StatusRejected && existing.Terminal != nil {
		*ev = *existing.Terminal
		return false, nil
	}
	return true, nil
}
