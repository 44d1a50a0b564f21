package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func TestDLQListAndShow(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	// First in the requests stream: dlq seq 1.
	if _, err := b.h.JS.Publish(t.Context(), jobs.RequestSubject("acme", "junk-1"), []byte("not json at all")); err != nil {
		t.Fatal(err)
	}
	b.h.WaitTerminal(t, "acme", 30*time.Second, "junk-1")
	if r := b.run(t, "submit", "--tenant", "initech", "--name", "broken", "--framework", "nextjs",
		"--source", filepath.Join(b.examples, "failing-build"), "--id", "broken-1", "--wait"); r.code != exitFailed {
		t.Fatalf("submit of a failing build: want exit 1; got %v", r)
	}

	r := b.run(t, "dlq", "list")
	if r.code != exitOK {
		t.Fatalf("want exit 0; got %v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header, 2 rows and a count; got %v", r)
	}
	for i, want := range [][]string{
		{"SEQ", "TIME", "TENANT", "ID", "REASON", "STEP", "CODE", "MESSAGE"},
		{"1", "acme", "junk-1", "rejected", "-", "invalid_request"},
		{"2", "initech", "broken-1", "failed", "wait_ready", "BUILD_FAILED", "deployment", "dpl_"},
		{"2", "dead", "letters"},
	} {
		if got := strings.Fields(lines[i]); len(got) < len(want) || !containsInOrder(got, want) {
			t.Errorf("line %d is %q; want the fields %q", i, lines[i], want)
		}
	}

	r = b.run(t, "dlq", "list", "--tenant", "initech", "--json")
	if r.code != exitOK || r.stderr != "1 dead letter (tenant initech)\n" {
		t.Fatalf("want exit 0 and the count on stderr; got %v", r)
	}
	var entry jobs.DeadLetterEntry
	if err := json.Unmarshal([]byte(r.stdout), &entry); err != nil {
		t.Fatalf("stdout is not one JSON entry: %v\n%s", err, r.stdout)
	}
	if entry.ID != "broken-1" || entry.Seq != 2 || entry.Error == nil || entry.Error.Code != "BUILD_FAILED" {
		t.Errorf("want broken-1's entry; got %+v", entry)
	}

	r = b.run(t, "dlq", "show", "broken-1")
	if r.code != exitOK {
		t.Fatalf("want exit 0; got %v", r)
	}
	for _, want := range []string{
		"request    broken-1\n",
		"tenant     initech\n",
		"reason     failed\n",
		"dlq seq    2\n",
		"subject    deploy.requests.initech.broken-1\n",
		"deliveries 1\n",
		"error\n  step:    wait_ready\n  code:    BUILD_FAILED\n",
		`Error: Command "npm run build" exited with 1`,
		"body\n  {\n    \"version\": 1,\n    \"id\": \"broken-1\",\n",
		`"name": "broken"`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q\n%v", want, r)
		}
	}

	r = b.run(t, "dlq", "show", "junk-1")
	if r.code != exitOK || !strings.Contains(r.stdout, "body       not a request, 15 bytes, sha256 ") || !strings.Contains(r.stdout, "  code:    invalid_request\n") {
		t.Errorf("want the rejection and the size of what was sent; got %v", r)
	}

	r = b.run(t, "dlq", "show", "--json", "broken-1")
	if err := json.Unmarshal([]byte(r.stdout), &entry); r.code != exitOK || err != nil || string(entry.Request) == "" {
		t.Errorf("want the entry as JSON with its request; got %v (%v)", r, err)
	}

	r = b.run(t, "dlq", "show", "never-failed")
	if r.code != exitFailed || !strings.Contains(r.stderr, "never-failed: no dead letter for this request id") {
		t.Errorf("want exit 1 for an id without a dead letter; got %v", r)
	}

	r = b.run(t, "dlq", "replay", "--all", "--tenant", "acme")
	if r.code != exitOK || r.stdout != "nothing to replay\n" ||
		!strings.Contains(r.stderr, "junk-1: not replayed: the dead-lettered message is not a request (15 bytes); it cannot run") {
		t.Errorf("want the message that is not JSON passed over; got %v", r)
	}
	// As the source janitor does once nothing references a tarball.
	var req jobs.Request
	if err := json.Unmarshal(entry.Request, &req); err != nil {
		t.Fatal(err)
	}
	if err := b.h.Assets.Sources.Delete(t.Context(), "initech", req.Source.SHA1, 0); err != nil {
		t.Fatal(err)
	}
	r = b.run(t, "dlq", "replay", "--all", "--tenant", "initech")
	if r.code != exitFailed || !strings.Contains(r.stderr, "replay broken-1: source tarball no longer stored ("+req.Source.SHA1+"); submit it again") ||
		!strings.Contains(r.stderr, "1 request(s) were not replayed") {
		t.Errorf("want exit 1 saying the tarball expired; got %v", r)
	}
}

// containsInOrder reports whether want is a subsequence of fields,
// each matched as a prefix.
func containsInOrder(fields, want []string) bool {
	i := 0
	for _, f := range fields {
		if i < len(want) && strings.HasPrefix(f, want[i]) {
			i++
		}
	}
	return i == len(want)
}

func TestDLQReplayAfterTransientFault(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{Worker: worker.Config{MaxAttempts: 2}})
	b.h.Sim.SetFault(vercel.EndpointTransferRequest, vercelsim.Fault{ErrorBefore: 1})
	file := writeFile(t, b.examples, "requests.jsonl", `{"id":"replay-me","tenant":"acme","framework":"nextjs","source":"nextjs-prisma"}
{"id":"replay-too","tenant":"globex","framework":"nextjs","source":"nextjs-prisma"}
`)
	r := b.run(t, "submit", "--file", file, "--wait")
	if r.code != exitFailed || strings.Count(r.stdout, "  code:    retries_exhausted\n") != 2 {
		t.Fatalf("want both to fail on the claim; got %v", r)
	}
	b.h.Sim.SetFault(vercel.EndpointTransferRequest, vercelsim.Fault{})

	r = b.run(t, "dlq", "replay", "replay-me", "--wait")
	if r.code != exitOK {
		t.Fatalf("want exit 0; got %v", r)
	}
	for _, want := range []string{
		"replay-me acme replayed (run 2)\n",
		"replay-me acme step_completed create_project\n",
		"replay-me acme succeeded",
		"  claim:   https://vercel.com/claim-deployment?code=",
		"1 succeeded, 0 failed, 0 rejected in ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q\n%v", want, r)
		}
	}
	if strings.Contains(r.stdout, "retries_exhausted") {
		t.Errorf("the first run's failure was shown as the replay's\n%v", r)
	}

	// replay-me succeeded since its dead letter: --all passes over it.
	r = b.run(t, "dlq", "replay", "--all", "--wait", "--json")
	if r.code != exitOK {
		t.Fatalf("want exit 0; got %v", r)
	}
	var ev jobs.Event
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil {
		t.Fatalf("stdout is not one event: %v\n%v", err, r)
	}
	if ev.Type != jobs.TypeSucceeded || ev.Data.RequestID != "replay-too" || ev.Data.Run != 2 {
		t.Errorf("want replay-too's second run to succeed; got %+v", ev)
	}
	if !strings.Contains(r.stderr, "replay-me: not replayed: it succeeded since (run 2)") {
		t.Errorf("stderr does not say why replay-me was left out\n%v", r)
	}

	// Same id, same project: the first run's was deleted after its failure.
	st, err := jobs.ReadState(t.Context(), b.h.Assets.Jobs, "acme", "replay-me")
	if err != nil || st == nil || st.Status != jobs.StatusSucceeded || st.Run != 2 {
		t.Fatalf("want replay-me succeeded in run 2; got %+v, %v", st, err)
	}
	r = b.run(t, "dlq", "replay", "replay-me")
	if r.code != exitFailed || !strings.Contains(r.stderr, "submit it under a new id") {
		t.Errorf("want a succeeded job refused with exit 1; got %v", r)
	}
	r = b.run(t, "dlq", "replay", "never-failed")
	if r.code != exitFailed || !strings.Contains(r.stderr, "no dead letter for this request id") {
		t.Errorf("want exit 1 for an id without a dead letter; got %v", r)
	}
}

func TestDLQPurge(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	tgz := jobstest.FailingTarball(t, "Error: build failed on purpose")
	for _, tenant := range []string{"acme", "globex"} {
		sub := b.h.Submit(t, jobs.Request{Tenant: tenant, Name: "broken"}, tgz)
		b.h.WaitTerminal(t, tenant, 30*time.Second, sub.ID)
	}

	r := b.run(t, "dlq", "purge")
	if r.code != exitUsage || r.stdout != "" ||
		!strings.Contains(r.stderr, "would delete 2 dead letters of every tenant; nothing deleted: add --yes") {
		t.Fatalf("want exit 2 saying what would be deleted; got %v", r)
	}
	if r := b.run(t, "dlq", "list"); !strings.HasSuffix(r.stdout, "\n2 dead letters\n") {
		t.Fatalf("purge without --yes deleted something:\n%v", r)
	}

	r = b.run(t, "dlq", "purge", "--tenant", "acme", "--yes")
	if r.code != exitOK || r.stdout != "deleted 1 dead letter of tenant acme\n" {
		t.Fatalf("want exit 0 and one deleted; got %v", r)
	}
	r = b.run(t, "dlq", "list")
	if !strings.Contains(r.stdout, " globex ") || strings.Contains(r.stdout, " acme ") || !strings.HasSuffix(r.stdout, "\n1 dead letter\n") {
		t.Fatalf("want only globex's dead letter left; got %v", r)
	}
	if r := b.run(t, "dlq", "purge", "--yes"); r.code != exitOK || r.stdout != "deleted 1 dead letter of every tenant\n" {
		t.Fatalf("want exit 0 and the last one deleted; got %v", r)
	}
	if r := b.run(t, "dlq", "list"); r.code != exitOK || r.stdout != "0 dead letters\n" {
		t.Fatalf("want an empty list; got %v", r)
	}
}
