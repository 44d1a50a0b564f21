package worker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// These tests play a tenant that publishes with a raw NATS client in its
// own lane (deploy.requests.<tenant>.*, all that deploy/nats allows it)
// and tries to reach another tenant's requests. docs/RELIABILITY.md,
// "Hostile tenants", lists each attack and the test that stops it.

// rawBody is a request body as any NATS client could publish it, for a
// tarball of that SHA-1 and size.
func rawBody(tenant, id, sha string, size int) string {
	return fmt.Sprintf(`{"version":1,"id":%q,"tenant":%q,"name":"raw","source":{"bucket":%q,"sha1":%q,"size":%d}}`,
		id, tenant, jobs.BucketSources, sha, size)
}

// deadLettersOn returns the dead letters whose message was published on subject.
func deadLettersOn(t *testing.T, h *jobstest.Harness, subject string) []jobs.DeadLetterEntry {
	t.Helper()
	all, err := h.Client.DeadLetters(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []jobs.DeadLetterEntry
	for _, d := range all {
		if d.Subject == subject {
			out = append(out, d)
		}
	}
	return out
}

// The same id in two tenants is two requests: acme's fast failure under
// globex's id neither swallows globex's success nor makes its submit a
// duplicate, and a header naming any dedup key changes nothing.
func TestSameIDInTwoTenants(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	const id = "shared-1"
	// acme goes first, with a source that does not exist, and a
	// Nats-Msg-Id set to every key globex's request or events could use.
	for _, key := range []string{id, "globex." + id, "globex." + id + ".terminal", id + ".terminal"} {
		m := nats.NewMsg(jobs.RequestSubject("acme", id))
		m.Data = []byte(rawBody("acme", id, strings.Repeat("ab", 20), 10))
		m.Header.Set(jetstream.MsgIDHeader, key)
		if _, err := h.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	acme := h.WaitTerminal(t, "acme", waitLong, id)[id]
	if acme.Type != jobs.TypeRejected || acme.Data.Error.Code != "source_missing" {
		t.Fatalf("acme's bogus request ended %s (%+v), want rejected for its missing source", acme.Type, acme.Data.Error)
	}
	req := jobstest.Request("globex", "app")
	req.ID = id
	sub := h.Submit(t, req, h.Tarball(t, nil))
	if sub.Duplicate {
		t.Fatalf("globex's first submit of %s was taken for a duplicate: %+v", id, sub)
	}
	globex := h.WaitTerminal(t, "globex", waitLong, id)[id]
	if globex.Type != jobs.TypeSucceeded || globex.Data.ClaimURL == "" {
		t.Fatalf("globex's request ended %s (%+v), want succeeded", globex.Type, globex.Data.Error)
	}
	if acme.ID == globex.ID {
		t.Fatalf("both terminal events have the id %s", acme.ID)
	}
	for _, tenant := range []string{"acme", "globex"} {
		if n := len(terminalEvents(t, h, tenant, id)); n != 1 {
			t.Errorf("%s has %d terminal events for %s, want 1", tenant, n, id)
		}
		st, err := jobs.ReadState(ctx, h.Assets.Jobs, tenant, id)
		if err != nil || st == nil || st.Tenant != tenant {
			t.Fatalf("%s's checkpoint: %+v, %v", tenant, st, err)
		}
	}
	// A resubmit is now a duplicate of globex's own request only.
	if again := h.Submit(t, req, h.Tarball(t, nil)); !again.Duplicate || again.Existing == nil || again.Existing.Status != jobs.StatusSucceeded {
		t.Fatalf("resubmit: %+v", again)
	}
}

// A second message on the subject of a live request, garbled or naming
// another id in its body, never ends that request: the request keeps
// exactly one terminal event, and the stray message is dead-lettered as
// itself, without the request's id.
func TestGarbledMessageCannotEndALiveRequest(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	w, err := h.Client.Watch(ctx, jobs.WatchFilter{Tenant: "acme", ID: "live-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	req := jobstest.Request("acme", "live")
	req.ID = "live-1"
	h.Submit(t, req, h.Tarball(t, nil))
	for ev, err := range w.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == jobs.TypeStepCompleted {
			break // the job has its checkpoint: it is live
		}
		t.Fatalf("first event %s", ev.Type)
	}
	subject := jobs.RequestSubject("acme", "live-1")
	for _, body := range []string{
		"not json",
		`{"version":1,"id":"live-1","id":"other","tenant":"acme"}`,
		`{"version":1,"id":"live-1","tenant":"acme","env":{"id":"live-1"},"bogus":1}`,
	} {
		if _, err := h.JS.Publish(ctx, subject, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	ev := h.WaitTerminal(t, "acme", waitLong, "live-1")["live-1"]
	if ev.Type != jobs.TypeSucceeded {
		t.Fatalf("live-1 ended %s: %+v", ev.Type, ev.Data.Error)
	}
	jobstest.Eventually(t, waitLong, "three stray dead letters", func() bool { return len(deadLettersOn(t, h, subject)) == 3 })
	for _, d := range deadLettersOn(t, h, subject) {
		if d.ID != "" || d.Tenant != "acme" || d.Reason != jobs.DLQReasonRejected || !strings.Contains(d.Error.Message, "exists already") {
			t.Errorf("stray dead letter: %+v", d.DeadLetter)
		}
	}
	queueDrained(t, h, waitLong, "the strays left the queue")
	if n := len(terminalEvents(t, h, "acme", "live-1")); n != 1 {
		t.Fatalf("%d terminal events for live-1, want 1", n)
	}
	if _, err := h.Client.DeadLetter(ctx, "acme", "live-1"); err == nil {
		t.Fatal("a stray's dead letter is listed as live-1's")
	}
}

// The first message of an id decides: a garbled one rejects the id, a
// valid one published after it runs nothing, and the id has one terminal
// event. Submit reports it as a duplicate of the rejected request.
func TestRejectionDecidesItsID(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	subject := jobs.RequestSubject("acme", "first-bad")
	if _, err := h.JS.Publish(ctx, subject, []byte(rawBody("acme", "someone-else", strings.Repeat("ab", 20), 10))); err != nil {
		t.Fatal(err)
	}
	ev := h.WaitTerminal(t, "acme", waitLong, "first-bad")["first-bad"]
	if ev.Type != jobs.TypeRejected || ev.Data.Error.Field != "id" || !strings.Contains(ev.Data.Error.Message, "does not match the subject's id") {
		t.Fatalf("rejection: %s %+v", ev.Type, ev.Data.Error)
	}
	if evs := h.Events(t, "acme", "someone-else"); len(evs) != 0 {
		t.Fatalf("the id named in the body got events: %+v", evs)
	}
	req := jobstest.Request("acme", "late")
	req.ID = "first-bad"
	sub := h.Submit(t, req, h.Tarball(t, nil))
	if !sub.Duplicate || sub.Existing == nil || sub.Existing.Status != jobs.StatusRejected {
		t.Fatalf("submit after the rejection: %+v", sub)
	}
	// Published past the client's check, as any NATS client could.
	data := rawBody("acme", "first-bad", strings.Repeat("ab", 20), 10)
	if _, err := h.JS.Publish(ctx, subject, []byte(data)); err != nil {
		t.Fatal(err)
	}
	queueDrained(t, h, waitLong, "the late message was settled")
	if n := len(terminalEvents(t, h, "acme", "first-bad")); n != 1 {
		t.Fatalf("%d terminal events, want 1", n)
	}
	if n := h.Sim.Stats().ProjectsCreated[jobs.ProjectName(&req)]; n != 0 {
		t.Fatalf("the rejected id deployed %d times", n)
	}
}

// A subject that names no id, or no valid tenant, is rejected without
// guessing whose request it was: the tenant learns of it under the
// message's sequence; a subject without a tenant is for operators only.
func TestRejectionFollowsTheSubjectOnly(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	live := jobstest.Request("acme", "live")
	live.ID = "named-in-body"
	h.Submit(t, live, h.Tarball(t, nil))
	h.WaitTerminal(t, "acme", waitLong, live.ID)
	// The old subject form, with a body naming a finished request.
	ack, err := h.JS.Publish(ctx, "deploy.requests.acme", []byte(rawBody("acme", live.ID, strings.Repeat("ab", 20), 10)))
	if err != nil {
		t.Fatal(err)
	}
	token := fmt.Sprintf("seq:%d", ack.Sequence)
	var rej jobs.Event
	jobstest.Eventually(t, waitLong, "a rejection under the message's sequence", func() bool {
		evs := jobstest.StoredEvents(t, h.JS, jobs.EventSubject("acme", token))
		if len(evs) == 1 {
			rej = evs[0]
		}
		return len(evs) == 1
	})
	if rej.Type != jobs.TypeRejected || rej.Data.RequestID != "" || !strings.Contains(rej.Data.Error.Message, "deploy.requests.<tenant>.<id>") {
		t.Fatalf("rejection: %+v", rej)
	}
	if n := len(terminalEvents(t, h, "acme", live.ID)); n != 1 {
		t.Fatalf("the request named in the body has %d terminal events", n)
	}
	// No valid tenant: a dead letter no tenant can read, no event.
	if _, err := h.JS.Publish(ctx, "deploy.requests.NOT_A_TENANT.x", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	jobstest.Eventually(t, waitLong, "an unattributed dead letter", func() bool {
		return len(deadLettersOn(t, h, "deploy.requests.NOT_A_TENANT.x")) == 1
	})
	d := deadLettersOn(t, h, "deploy.requests.NOT_A_TENANT.x")[0]
	if d.Tenant != "_unattributed" || d.ID != "" {
		t.Fatalf("dead letter: %+v", d.DeadLetter)
	}
	if evs := jobstest.StoredEvents(t, h.JS, "deploy.events.NOT_A_TENANT.>"); len(evs) != 0 {
		t.Fatalf("events for a subject without a tenant: %+v", evs)
	}
}

// A message past the request limit never reaches a worker: the stream
// refuses it. One that does (a stream set up with a larger limit than
// the workers') is rejected once, with a dead letter that keeps a
// bounded prefix and a hash rather than the body, so it fits in a
// message and the request never loops.
func TestOversizedMessageIsRejectedOnce(t *testing.T) {
	t.Parallel()
	huge := bytes.Repeat([]byte("\x00not json "), 90_000) // 900 KB
	h := jobstest.Start(t, jobstest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := h.JS.Publish(ctx, jobs.RequestSubject("acme", "huge"), huge); err == nil {
		t.Fatal("the requests stream stored a 900 KB request")
	}

	loose := jobstest.Start(t, jobstest.Config{Setup: jobs.SetupConfig{MaxRequestBytes: 1000 << 10}})
	if _, err := loose.JS.Publish(ctx, jobs.RequestSubject("acme", "huge"), huge); err != nil {
		t.Fatal(err)
	}
	ev := loose.WaitTerminal(t, "acme", waitLong, "huge")["huge"]
	if ev.Type != jobs.TypeRejected || !strings.Contains(ev.Data.Error.Message, "more than the 65536 allowed") {
		t.Fatalf("rejection: %s %+v", ev.Type, ev.Data.Error)
	}
	dl, err := loose.Client.DeadLetter(ctx, "acme", "huge")
	if err != nil {
		t.Fatal(err)
	}
	if dl.Request != nil || len(dl.RequestRaw) != jobs.MaxDeadLetterCopy || dl.RequestSize != len(huge) ||
		dl.RequestSHA256 != fmt.Sprintf("%x", sha256.Sum256(huge)) || !bytes.Equal(dl.RequestRaw, huge[:jobs.MaxDeadLetterCopy]) {
		t.Fatalf("dead letter: size %d, raw %d bytes, sha %s", dl.RequestSize, len(dl.RequestRaw), dl.RequestSHA256)
	}
	queueDrained(t, loose, waitLong, "the message left the queue")
	if evs := loose.Events(t, "acme", "huge"); len(evs) != 1 {
		t.Fatalf("%d events for the oversized message", len(evs))
	}
}

// A cancel notice is a hint: one published without Client.Cancel's mark
// in the checkpoint (anything in the account can publish on the notice's
// subject, a push consumer included) does not stop the job.
func TestForgedCancelNoticeIsIgnored(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Sim: vercelsim.Config{BuildTime: 300 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	w, err := h.Client.Watch(ctx, jobs.WatchFilter{Tenant: "acme", ID: "kept-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	req := jobstest.Request("acme", "kept")
	req.ID = "kept-1"
	h.Submit(t, req, h.Tarball(t, nil))
	for ev, err := range w.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Data.Step == jobs.StepCreateDeployment {
			break // building: the job waits with its context live
		}
	}
	if err := h.NC.Publish("deploy.cancel.acme.kept-1", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if ev := h.WaitTerminal(t, "acme", waitLong, "kept-1")["kept-1"]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("a forged cancel notice ended the job %s", ev.Type)
	}
}

// Workers run messages concurrently, so a garbled copy published right
// behind a valid request may be looked at first: it still never decides
// the id while the earlier message is in the stream.
func TestGarbledCopyRightBehindItsRequest(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	tgz := h.Tarball(t, nil)
	if err := h.Assets.Sources.Put(ctx, "acme", vercel.SHA1Hex(tgz), tgz); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 20 {
		id := fmt.Sprintf("behind-%d", i)
		ids = append(ids, id)
		body := rawBody("acme", id, vercel.SHA1Hex(tgz), len(tgz))
		for _, data := range []string{body, "garbled"} {
			if _, err := h.JS.Publish(ctx, jobs.RequestSubject("acme", id), []byte(data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for id, ev := range h.WaitTerminal(t, "acme", waitLong, ids...) {
		if ev.Type != jobs.TypeSucceeded {
			t.Errorf("%s ended %s (%+v): its garbled copy decided it", id, ev.Type, ev.Data.Error)
		}
	}
	queueDrained(t, h, waitLong, "the copies were settled")
	for _, id := range ids {
		if n := len(terminalEvents(t, h, "acme", id)); n != 1 {
			t.Errorf("%s has %d terminal events", id, n)
		}
	}
}
