package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/internal/syncbuf"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func TestWatchUntilInterrupted(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	if r := b.run(t, "submit", "--tenant", "acme", "--framework", "nextjs", "--source", filepath.Join(b.examples, "nextjs-prisma"), "--id", "watched", "--wait"); r.code != exitOK {
		t.Fatalf("submit: %v", r)
	}

	// Cancelling the context is what SIGINT does through signal.NotifyContext.
	ctx, interrupt := context.WithCancel(t.Context())
	defer interrupt()
	var stdout, stderr syncbuf.Buffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"watch", "--tenant", "acme", "--from-start"},
			func(k string) string { return b.env[k] }, &stdout, &stderr)
	}()

	want := "watched acme succeeded"
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q after 30s\nstdout:\n%s\nstderr:\n%s", want, stdout.String(), stderr.String())
		}
		select {
		case code := <-done:
			t.Fatalf("watch ended on its own with %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
		case <-time.After(10 * time.Millisecond): // poll interval
		}
	}
	interrupt()
	if code := <-done; code != exitOK {
		t.Errorf("want exit 0 after an interrupt; got %d\nstderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"watched acme step_completed create_project", " url=https://", " claim=https://vercel.com/claim-deployment?code="} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}

// Watching one request ends at its terminal event, with its outcome as
// the exit status; --logs prints the build's lines as they come.
func TestWatchOneRequestEndsAtItsOutcome(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{Sim: vercelsim.Config{BuildTime: 300 * time.Millisecond}})
	var stdout, stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(t.Context(), []string{"watch", "--tenant", "acme", "--id", "followed", "--logs"},
			func(k string) string { return b.env[k] }, &stdout, &stderr)
	}()
	// The watch listens before the request exists: it sees its build.
	jobstest.Eventually(t, 10*time.Second, "the watch never subscribed: "+stderr.String(), func() bool {
		select {
		case code := <-done:
			t.Fatalf("watch ended with %d before the request: %s", code, stderr.String())
		default:
		}
		return subscribed(b, "deploy.logwatch.acme.followed")
	})
	if r := b.run(t, "submit", "--tenant", "acme", "--source", filepath.Join(b.examples, "nextjs-prisma"), "--id", "followed"); r.code != exitOK {
		t.Fatalf("submit: %v", r)
	}
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("watch --id did not end at the terminal event:\n%s", stdout.String())
	}
	out := stdout.String()
	for _, want := range []string{"   │ Running build in", "   │ Build Completed", "followed acme succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if r := b.run(t, "watch", "--logs"); r.code != exitUsage {
		t.Errorf("--logs without --id: %v", r)
	}
}

// subscribed reports whether anyone listens on subject.
func subscribed(b *bundle, subject string) bool {
	_, err := b.h.NC.Request(subject, nil, time.Second)
	return err == nil
}
