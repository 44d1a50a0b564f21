package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func TestCancelRunningJob(t *testing.T) {
	t.Parallel()
	// The build outlasts the test: only the cancel ends the job.
	b := setup(t, jobstest.Config{Sim: vercelsim.Config{BuildTime: time.Hour}})
	if r := b.run(t, "submit", "--tenant", "acme", "--framework", "nextjs", "--source", filepath.Join(b.examples, "nextjs-prisma"), "--id", "stop-me"); r.code != exitOK {
		t.Fatalf("submit: %v", r)
	}
	jobstest.Eventually(t, 30*time.Second, "the deployment was never created", func() bool {
		st, err := jobs.ReadState(t.Context(), b.h.Assets.Jobs, "acme", "stop-me")
		if err != nil {
			t.Fatal(err)
		}
		return st != nil && st.Step == jobs.StepCreateDeployment
	})

	r := b.run(t, "cancel", "stop-me", "--tenant", "acme", "--wait")
	if r.code != exitOK {
		t.Fatalf("want exit 0; got %v", r)
	}
	for _, want := range []string{
		"stop-me acme cancel requested: the job is running (last step create_deployment)",
		"stop-me acme cancelled wait_ready",
		"  cleaned: database, project\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q\n%v", want, r)
		}
	}
	if strings.Contains(r.stdout, "step_completed create_project") {
		t.Errorf("events from before the cancel were shown\n%v", r)
	}
	if n := len(b.h.Sim.Projects()); n != 0 {
		t.Errorf("%d projects left after the cancel", n)
	}

	r = b.run(t, "cancel", "stop-me", "--tenant", "acme")
	if r.code != exitFailed || !strings.Contains(r.stderr, "stop-me: already finished with status cancelled; nothing to cancel") {
		t.Errorf("want exit 1 for a finished job; got %v", r)
	}
}

func TestCancelFinishedOrUnseen(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	if r := b.run(t, "submit", "--tenant", "acme", "--framework", "nextjs", "--source", filepath.Join(b.examples, "nextjs-prisma"), "--id", "done-1", "--wait"); r.code != exitOK {
		t.Fatalf("submit: %v", r)
	}
	r := b.run(t, "cancel", "done-1", "--tenant", "acme", "--wait")
	if r.code != exitFailed || r.stdout != "" || !strings.Contains(r.stderr, "done-1: already finished with status succeeded") {
		t.Errorf("want exit 1 for a succeeded job; got %v", r)
	}

	// A rejection leaves an event and a rejected checkpoint.
	bad := fmt.Sprintf(`{"version":1,"id":"bad-1","tenant":"acme","name":"x","retrunUrl":"https://example.com","source":{"bucket":%q,"sha1":%q,"size":1}}`,
		jobs.BucketSources, strings.Repeat("a", 40))
	if _, err := b.h.JS.Publish(t.Context(), jobs.RequestSubject("acme", "bad-1"), []byte(bad)); err != nil {
		t.Fatal(err)
	}
	b.h.WaitTerminal(t, "acme", 30*time.Second, "bad-1")
	r = b.run(t, "cancel", "bad-1", "--tenant", "acme")
	if r.code != exitFailed || !strings.Contains(r.stderr, "bad-1: already finished with status rejected") {
		t.Errorf("want exit 1 for a rejected request; got %v", r)
	}

	r = b.run(t, "cancel", "not-sent-yet", "--tenant", "acme")
	if r.code != exitOK || !strings.Contains(r.stdout, "not-sent-yet acme cancel recorded: no worker has started this request") {
		t.Errorf("want the cancel recorded; got %v", r)
	}
	st, err := jobs.ReadState(t.Context(), b.h.Assets.Jobs, "acme", "not-sent-yet")
	if err != nil || st == nil || !st.CancelRequested {
		t.Errorf("want a checkpoint marked cancelled; got %+v, %v", st, err)
	}
}
