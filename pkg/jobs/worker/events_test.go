package worker_test

import (
	"context"
	"testing"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Every event message names its type in a header, and a terminal-only
// watch yields the terminal events alone, of successes and failures.
func TestEventTypeHeaderAndTerminalOnlyWatch(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	w, err := h.Client.Watch(ctx, jobs.WatchFilter{Tenant: "acme", TerminalOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// A progress event the watch must pass over by its header alone: its
	// body is not even JSON, so decoding it would yield an error.
	junk := nats.NewMsg(jobs.EventSubject("acme", "junk"))
	junk.Header.Set(jobs.HeaderEventType, string(jobs.TypeStepCompleted))
	junk.Data = []byte("not an event")
	if _, err := h.JS.PublishMsg(ctx, junk); err != nil {
		t.Fatal(err)
	}
	ok := h.Submit(t, jobstest.Request("acme", "fine"), h.Tarball(t, nil))
	bad := h.Submit(t, jobstest.Request("acme", "broken"), jobstest.FailingTarball(t, "type error"))
	want := map[string]jobs.EventType{ok.ID: jobs.TypeSucceeded, bad.ID: jobs.TypeFailed}
	got := map[string]jobs.EventType{}
	for ev, err := range w.Events() {
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		if !ev.Terminal() {
			t.Fatalf("terminal-only watch yielded %s of %s", ev.Type, ev.Data.RequestID)
		}
		if _, dup := got[ev.Data.RequestID]; dup {
			t.Fatalf("second terminal event for %s", ev.Data.RequestID)
		}
		got[ev.Data.RequestID] = ev.Type
		if len(got) == len(want) {
			break
		}
	}
	for id, typ := range want {
		if got[id] != typ {
			t.Fatalf("%s ended %q, want %q", id, got[id], typ)
		}
	}

	// The stored messages carry the header; the progress events of the
	// success are there, skipped by the watch above.
	steps := 0
	for _, id := range []string{ok.ID, bad.ID} {
		for _, m := range storedMsgs(t, h.JS, jobs.EventSubject("acme", id)) {
			ev, err := jobs.DecodeEvent(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if hdr := m.Header.Get(jobs.HeaderEventType); hdr != string(ev.Type) {
				t.Fatalf("%s header %q, event type %q", jobs.HeaderEventType, hdr, ev.Type)
			}
			if id == ok.ID && !ev.Terminal() {
				steps++
			}
		}
	}
	if steps != len(jobs.Steps()) {
		t.Fatalf("%d progress events stored for the success, want %d", steps, len(jobs.Steps()))
	}
}

// A worker told to publish no progress events still ends every request
// with exactly one terminal event, and publishes nothing else.
func TestNoProgressEvents(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Worker: worker.Config{NoProgressEvents: true}})
	ok := h.Submit(t, jobstest.Request("acme", "quiet"), h.Tarball(t, nil))
	bad := h.Submit(t, jobstest.Request("acme", "quiet-broken"), jobstest.FailingTarball(t, "type error"))
	got := h.WaitTerminal(t, "acme", waitLong, ok.ID, bad.ID)
	if got[ok.ID].Type != jobs.TypeSucceeded || got[ok.ID].Data.ClaimURL == "" || got[bad.ID].Type != jobs.TypeFailed {
		t.Fatalf("outcomes: %s %+v, %s", got[ok.ID].Type, got[ok.ID].Data, got[bad.ID].Type)
	}
	for _, id := range []string{ok.ID, bad.ID} {
		evs := h.Events(t, "acme", id)
		if len(evs) != 1 || !evs[0].Terminal() {
			t.Fatalf("%s: %d events stored, want its terminal event only: %+v", id, len(evs), evs)
		}
	}
}

// storedMsgs reads the raw stored messages of one subject.
func storedMsgs(t *testing.T, js jetstream.JetStream, subject string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	s, err := js.Stream(ctx, jobs.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted, or another subject's gap
		}
		if m.Subject == subject {
			out = append(out, m)
		}
	}
	return out
}
