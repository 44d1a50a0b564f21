package worker_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go"
)

// FuzzRequestPath publishes whatever a producer could send (a body and
// the headers deployq reads or NATS honours) on a fresh request subject
// of a running deployq, and checks the one promise that holds for any
// input: the message ends with exactly one terminal event on its
// subject, leaves the queue, and what it leaves behind (events, dead
// letter) is bounded whatever its size. "{{id}}" in the body stands for
// the subject's id and "{{sha}}"/"{{size}}" for a stored tarball, so the
// fuzzer can reach valid requests and every step after validation.
func FuzzRequestPath(f *testing.F) {
	// The harness's default logger writes through f, which a fuzz target
	// may not call: the workers' lines are dropped instead.
	h := jobstest.Start(f, jobstest.Config{Worker: worker.Config{Logger: slog.New(slog.DiscardHandler)}})
	ctx := context.Background()
	tarball := h.Tarball(f, nil)
	if err := h.Assets.Sources.Put(ctx, "acme", vercel.SHA1Hex(tarball), tarball); err != nil {
		f.Fatal(err)
	}
	valid := `{"version":1,"id":"{{id}}","tenant":"acme","name":"fuzz","source":{"bucket":"DEPLOY_SOURCES","sha1":"{{sha}}","size":{{size}}}}`
	f.Add([]byte(valid), "", "")
	f.Add([]byte(valid), "2", "acme.x.terminal")
	f.Add([]byte(`{"version":1,"id":"other","tenant":"acme"}`), "", "")
	f.Add([]byte(`{"version":1,"id":"{{id}}","id":"x","tenant":"globex"}`), "", "")
	f.Add([]byte("not json \x00\xff"), "-1", "")
	f.Add([]byte(`{"version":1,"id":"{{id}}","tenant":"acme","name":"fuzz","env":{"A":"\ud800"},"source":{"bucket":"DEPLOY_SOURCES","sha1":"{{sha}}","size":{{size}}}}`), "", "")
	f.Add(bytes.Repeat([]byte("{"), 70_000), "", "")
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, body []byte, run, msgID string) {
		id := "fz" + strconv.FormatInt(n.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		subject := jobs.RequestSubject("acme", id)
		body = bytes.ReplaceAll(body, []byte("{{id}}"), []byte(id))
		body = bytes.ReplaceAll(body, []byte("{{sha}}"), []byte(vercel.SHA1Hex(tarball)))
		body = bytes.ReplaceAll(body, []byte("{{size}}"), []byte(strconv.Itoa(len(tarball))))
		m := nats.NewMsg(subject)
		m.Data = body
		if run != "" {
			m.Header.Set(jobs.HeaderRun, run)
		}
		if msgID != "" {
			m.Header.Set("Nats-Msg-Id", msgID)
		}
		// Under the fuzzing engine's 10 s, past which it takes an input
		// for a hang; a deploy against the simulator takes milliseconds.
		ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		defer cancel()
		sub, err := h.NC.SubscribeSync(jobs.EventSubject("acme", id))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		ack, err := h.JS.PublishMsg(ctx, m)
		if err != nil || ack.Duplicate {
			// Refused at the door (too large, a header NATS rejects), or
			// not stored (a Nats-Msg-Id seen before): nothing to end.
			return
		}
		for {
			msg, err := sub.NextMsg(time.Until(deadlineOf(ctx)))
			if err != nil {
				t.Fatalf("no terminal event for a %d-byte body: %v", len(body), err)
			}
			if len(msg.Data) > 16<<10 {
				t.Fatalf("an event of %d bytes", len(msg.Data))
			}
			if ev, err := jobs.DecodeEvent(msg.Data); err == nil && ev.Terminal() {
				break
			}
		}
		queueDrained(t, h, 8*time.Second, "the message never left the queue")
		terminal := 0
		for _, ev := range h.Events(t, "acme", id) {
			if ev.Terminal() {
				terminal++
			}
		}
		if terminal != 1 {
			t.Fatalf("%d terminal events", terminal)
		}
		if dl, err := h.Client.DeadLetter(ctx, "acme", id); err == nil && len(dl.Request)+len(dl.RequestRaw) > 64<<10 {
			t.Fatalf("a dead letter keeps %d bytes of the message", len(dl.Request)+len(dl.RequestRaw))
		}
	})
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
