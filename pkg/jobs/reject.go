package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/deployq/deployq/internal/streamget"
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
// tenant may read it. Tenants match tenantPattern, so none has this name.
const unattributedDLQ = "_unattributed"

// origin is what a request message's subject proves about it.
type origin struct {
	// tenant is the subject's tenant token, "" when it is not a valid
	// tenant name.
	tenant string
	// id is the subject's id token, "" when there is none or it is not a
	// valid id.
	id string
}

func originOf(subject string) origin {
	tenant, id, _ := requestSubjectParts(subject)
	if !tenantPattern.MatchString(tenant) {
		return origin{}
	}
	if !idPattern.MatchString(id) {
		id = ""
	}
	return origin{tenant: tenant, id: id}
}

// checkOrigin refuses a decoded request whose body disagrees with its
// subject.
func checkOrigin(o origin, subject string, r *Request) error {
	switch {
	case o.tenant == "":
		return invalid("", "subject %s names no valid tenant; publish on deploy.requests.<tenant>.<id>", clip(subject, maxReasonLen/2))
	case o.id == "":
		return invalid("", "subject %s names no valid request id; publish on deploy.requests.<tenant>.<id>", clip(subject, maxReasonLen/2))
	case r.Tenant != o.tenant:
		return invalid("tenant", "%q does not match the subject's tenant %q", r.Tenant, o.tenant)
	case r.ID != o.id:
		return invalid("id", "%q does not match the subject's id %q", r.ID, o.id)
	}
	return nil
}

// unattributedToken files the rejection of a message that names a tenant
// but no id under its stream sequence. ':' is in no request id, so the
// token never collides with a request's subject.
func unattributedToken(seq uint64) string { return "seq:" + strconv.FormatUint(seq, 10) }

// reject ends a request message that cannot run (see the note above).
func (w *Worker) reject(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, verr *ValidationError) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), natsOpTimeout)
	defer cancel()
	o := originOf(msg.Subject())
	seq := meta.Sequence.Stream
	log := w.log.With("request_id", o.id, "tenant", o.tenant, "step", stepValidate, "stream_seq", seq)
	final := &EventError{Code: "invalid_request", Field: verr.Field, Message: verr.Error()}
	var ev *Event
	stray := false
	switch {
	case o.tenant == "":
		// Nobody to tell: the dead letter is for operators.
	case o.id == "":
		e := newEvent(TypeRejected, o.tenant+"."+unattributedToken(seq), w.now(), EventData{
			Tenant: o.tenant, Attempt: int(meta.NumDelivered), Error: final,
		})
		e.Subject = unattributedToken(seq)
		ev = &e
	default:
		e := newEvent(TypeRejected, terminalEventID(o.tenant, o.id, 1), w.now(), EventData{
			RequestID: o.id, Tenant: o.tenant, Attempt: int(meta.NumDelivered), Error: final,
		})
		var err error
		if stray, err = w.recordRejection(ctx, o, seq, meta, &e); err != nil {
			log.Warn("rejection not recorded; handing back", "err", err)
			w.handBack(msg, log, w.cfg.PullWait)
			return
		}
		if !stray {
			ev = &e
		}
	}
	l := letterOf(msg, meta, o.tenant, o.id, DLQReasonRejected, final, nil)
	if o.tenant == "" {
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
		if err := w.publishEvent(ctx, o.tenant, *ev); err != nil {
			log.Warn("rejection event not published; handing back", "err", err)
			w.handBack(msg, log, w.cfg.PullWait)
			return
		}
	}
	if err := msg.TermWithReason(clip("rejected: "+verr.Error(), maxReasonLen)); err != nil {
		log.Warn("terminating the rejected request failed", "err", err)
	}
	log.Warn("request rejected", "field", verr.Field, "reason", verr.Reason, "stray", stray)
}

// recordRejection writes the rejected checkpoint of the request o names,
// unless the id has one already, or an earlier message of the id is
// still in the stream: then the message is a stray. Workers run messages
// concurrently, so without the second check a garbled copy published
// after a valid request could be decided first and spend its id. A
// checkpoint this very message wrote (a redelivery after a crash) is not
// a stray's.
func (w *Worker) recordRejection(ctx context.Context, o origin, seq uint64, meta *jetstream.MsgMetadata, ev *Event) (stray bool, err error) {
	first, err := streamget.First(ctx, w.js.Conn(), StreamRequests, RequestSubject(o.tenant, o.id), jetstream.ErrMsgNotFound)
	switch {
	case err == nil && first.Seq < seq:
		return true, nil
	case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound):
		return false, fmt.Errorf("record rejection: %w", err)
	}
	now := w.now()
	cp, created, err := loadOrCreate(ctx, w.assets.Jobs, JobState{
		Version: stateVersion, ID: o.id, Tenant: o.tenant, Status: StatusRejected, Run: 1, Seq: seq,
		SubmittedAt: meta.Timestamp, StartedAt: now, UpdatedAt: now, Terminal: ev,
	}, meta.NumDelivered == 1)
	if err != nil {
		return false, fmt.Errorf("record rejection: %w", err)
	}
	if created {
		return false, nil
	}
	if cp.state.Seq == seq && cp.state.Status == StatusRejected && cp.state.Terminal != nil {
		*ev = *cp.state.Terminal
		return false, nil
	}
	return true, nil
}
