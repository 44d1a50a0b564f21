package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/internal/syncbuf"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
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
		done <- run(ctx, []string{"watch", "--id", "watched", "--from-start"},
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
