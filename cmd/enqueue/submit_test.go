package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
)

func TestSubmitDirectoryWait(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	r := b.run(t, "submit", "--tenant", "acme", "--source", filepath.Join(b.examples, "nextjs-prisma"),
		"--framework", "nextjs", "--return-url", "https://example.com/back", "--env", "APP_TITLE=Hello world", "--wait")
	if r.code != exitOK {
		t.Fatalf("want exit 0; got %v", r)
	}
	for _, want := range []string{
		"acme step_completed create_project",
		"acme succeeded",
		"  url:     https://nextjs-prisma-", // the name defaults to the directory's
		"  claim:   https://vercel.com/claim-deployment?code=",
		"1 succeeded, 0 failed, 0 rejected in ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q\n%v", want, r)
		}
	}
}

func TestSubmitWaitJSON(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	file := writeFile(t, b.examples, "requests.jsonl", `
{"id":"json-a","tenant":"acme","framework":"nextjs","source":"nextjs-prisma"}
{"id":"json-b","tenant":"globex","name":"globex-notes","framework":"nextjs","source":"./nextjs-prisma/"}
`)
	r := b.run(t, "submit", "--file", file, "--wait", "--json")
	if r.code != exitOK {
		t.Fatalf("want exit 0; got %v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	var ids []string
	for _, line := range lines {
		var ev jobs.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("stdout line is not an event: %v\n%s", err, line)
		}
		if ev.Type != jobs.TypeSucceeded || ev.Data.URL == "" || ev.Data.ClaimURL == "" {
			t.Errorf("want a succeeded event with URL and claim URL; got %s", line)
		}
		ids = append(ids, ev.Data.RequestID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"json-a", "json-b"}) {
		t.Errorf("want one terminal event per request and nothing else; got ids %v\n%v", ids, r)
	}
}

func TestSubmitFileWithFailingBuild(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	file := writeFile(t, b.examples, "requests.jsonl", `# one app that deploys, one whose build fails

{"id":"good","tenant":"acme","name":"notes","framework":"nextjs","source":"nextjs-prisma"}
{"id":"broken","tenant":"initech","name":"broken","framework":"nextjs","source":"failing-build"}
`)
	r := b.run(t, "submit", "--file", file, "--wait")
	if r.code != exitFailed {
		t.Fatalf("want exit 1 when a build fails; got %v", r)
	}
	for _, want := range []string{
		"broken initech failed wait_ready",
		"  step:    wait_ready",
		`Error: Command "npm run build" exited with 1`, // the simulator's message from .vercelsim/fail-build
		"good acme succeeded",
		"1 succeeded, 1 failed, 0 rejected in ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q\n%v", want, r)
		}
	}
}

func TestSubmitFileBadLineSubmitsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	file := writeFile(t, b.examples, "requests.jsonl", `{"tenant":"acme","source":"nextjs-prisma"}
# a comment
{"name":"no-tenant","source":"nextjs-prisma"}
{"tenant":"acme","source":"nextjs-prisma","retrunUrl":"https://example.com"}
{"tenant":"acme","source":"missing-dir"}
{"tenant":"acme","source":"nextjs-prisma"}
`)
	r := b.run(t, "submit", "--file", file, "--wait")
	if r.code != exitUsage {
		t.Fatalf("want exit 2; got %v", r)
	}
	for _, want := range []string{
		file + ":3: tenant: missing",
		file + ":4: retrunUrl: unknown field",
		file + ":5: source " + filepath.Join(b.examples, "missing-dir") + ": no such directory or file",
		"nothing submitted",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q\n%v", want, r)
		}
	}
	if strings.Contains(r.stderr, ":1:") || strings.Contains(r.stderr, ":6:") {
		t.Errorf("good lines reported as errors:\n%s", r.stderr)
	}
	info, err := b.h.Assets.Requests.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// LastSeq, not Msgs: workers delete what they consume.
	if info.State.LastSeq != 0 {
		t.Errorf("requests stream has had %d messages; want none", info.State.LastSeq)
	}
	if list, err := b.h.Assets.Sources.List(t.Context()); err != nil || len(list) != 0 {
		t.Errorf("want no source tarball stored; List gave %d, %v", len(list), err)
	}
}

func TestSubmitRepeat(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	file := writeFile(t, b.examples, "requests.jsonl", `{"id":"rep","tenant":"acme","framework":"nextjs","source":"nextjs-prisma"}
{"tenant":"globex","framework":"nextjs","source":"nextjs-prisma"}
`)
	r := b.run(t, "submit", "--file", file, "--repeat", "3", "--wait", "--json")
	if r.code != exitOK {
		t.Fatalf("want exit 0; got %v", r)
	}
	var named, fresh []string
	for line := range strings.Lines(r.stdout) {
		var ev jobs.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if ev.Data.Tenant == "acme" {
			named = append(named, ev.Data.RequestID)
		} else {
			fresh = append(fresh, ev.Data.RequestID)
		}
	}
	slices.Sort(named)
	if !slices.Equal(named, []string{"rep-1", "rep-2", "rep-3"}) {
		t.Errorf("a named id is repeated as <id>-N; got %v", named)
	}
	if slices.Sort(fresh); len(fresh) != 3 || len(slices.Compact(fresh)) != 3 {
		t.Errorf("want 3 distinct fresh ids; got %v", fresh)
	}
}

func TestSubmitSameDirectoryTwicePacksTheSameBytes(t *testing.T) {
	t.Parallel()
	// No workers: the requests stay in the stream to be read back.
	b := setup(t, jobstest.Config{NoWorkers: true})
	src := filepath.Join(b.examples, "nextjs-prisma")
	var shas []string
	for range 2 {
		r := b.run(t, "submit", "--tenant", "acme", "--source", src, "--json")
		if r.code != exitOK {
			t.Fatalf("want exit 0; got %v", r)
		}
		var s submission
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		shas = append(shas, s.Source.SHA1)
	}
	// Read by sequence: a work-queue stream refuses the ordered consumer
	// jobstest.StoredMessages uses.
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := b.h.Assets.Requests.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("request %d: %v", seq, err)
		}
		req, err := jobs.DecodeRequest(m.Data, jobs.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		shas = append(shas, req.Source.SHA1)
	}
	if shas[0] == "" || slices.ContainsFunc(shas, func(s string) bool { return s != shas[0] }) {
		t.Errorf("want one SHA-1 for both packs, in the output and the stream; got %v", shas)
	}
}

func TestSubmitTarball(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	tgz := writeFile(t, b.examples, "My App.tgz", string(jobstest.Tarball(t, nil)))
	r := b.run(t, "submit", "--tenant", "acme", "--framework", "nextjs", "--source", tgz, "--wait")
	if r.code != exitOK || !strings.Contains(r.stdout, "url:     https://my-app-") {
		t.Fatalf("want exit 0 and a project named after the file; got %v", r)
	}
}

func TestSubmitDuplicateReturnsTheFirstOutcome(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	args := []string{"submit", "--tenant", "acme", "--framework", "nextjs", "--source", filepath.Join(b.examples, "nextjs-prisma"), "--id", "twice", "--wait"}
	first := b.run(t, args...)
	if first.code != exitOK {
		t.Fatalf("first submit: %v", first)
	}
	second := b.run(t, args...)
	if second.code != exitOK || !strings.Contains(second.stdout, "twice acme duplicate: a job with this id is already succeeded") {
		t.Fatalf("want the duplicate noted and exit 0; got %v", second)
	}
	// The earlier job's history is not replayed as if it ran again.
	if strings.Contains(second.stdout, "step_completed") || !strings.Contains(second.stdout, "(duplicate: the earlier job's outcome)") ||
		!strings.Contains(second.stdout, "(1 of them duplicates: an earlier job's outcome, nothing ran again)") {
		t.Errorf("a duplicate shown as a new run:\n%s", second.stdout)
	}
	url := func(out string) string {
		_, rest, _ := strings.Cut(out, "url:     ")
		u, _, _ := strings.Cut(rest, "\n")
		return u
	}
	if url(first.stdout) == "" || url(first.stdout) != url(second.stdout) {
		t.Errorf("want the same deployment both times; got %q and %q", url(first.stdout), url(second.stdout))
	}
	if n := len(b.h.Sim.Stats().ProjectsCreated); n != 1 {
		t.Errorf("want 1 project created; got %d", n)
	}
}

func TestSubmitWaitTimesOut(t *testing.T) {
	t.Parallel()
	// Nothing consumes the request, so it cannot end before the timeout.
	b := setup(t, jobstest.Config{NoWorkers: true})
	r := b.run(t, "submit", "--tenant", "acme", "--source", filepath.Join(b.examples, "nextjs-prisma"),
		"--id", "stuck", "--wait", "--timeout", (300 * time.Millisecond).String())
	if r.code != exitTimeout {
		t.Fatalf("want exit 3; got %v", r)
	}
	for _, want := range []string{"timed out after 300ms", "have not ended", "stuck"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q\n%v", want, r)
		}
	}
	if !strings.Contains(r.stdout, "0 succeeded, 0 failed, 0 rejected, 1 unfinished") {
		t.Errorf("want the unfinished request counted\n%v", r)
	}
}

func TestSubmitWithoutWait(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{NoWorkers: true})
	r := b.run(t, "submit", "--tenant", "acme", "--source", filepath.Join(b.examples, "nextjs-prisma"), "--id", "fire-and-forget")
	if r.code != exitOK || r.stdout != "fire-and-forget acme submitted\n" {
		t.Fatalf("want the id printed and exit 0; got %v", r)
	}
}

// As a tenant's user (--nats-tenant), enqueue follows its requests by
// subscription and direct gets, which is all such a user may do: a
// submit --wait, a resubmit of a finished id (its outcome read back) and
// status work; the DLQ is the admin's, and another tenant's request is
// refused before anything is sent.
func TestSubmitAsTenant(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	src := filepath.Join(b.examples, "nextjs-prisma")
	r := b.run(t, "--nats-tenant", "acme", "submit", "--tenant", "acme", "--source", src, "--id", "mine-1", "--wait", "--json")
	if r.code != exitOK {
		t.Fatalf("submit --wait as tenant: %v", r)
	}
	var ev jobs.Event
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &ev); err != nil || ev.Type != jobs.TypeSucceeded || ev.Data.RequestID != "mine-1" {
		t.Fatalf("want mine-1's succeeded event; got %v (%v)", r, err)
	}
	if r := b.run(t, "--nats-tenant", "acme", "submit", "--tenant", "acme", "--source", src, "--id", "mine-1", "--wait"); r.code != exitOK {
		t.Fatalf("resubmit of a finished id as tenant: %v", r)
	}
	if r := b.run(t, "--nats-tenant", "acme", "status", "--tenant", "acme", "mine-1"); r.code != exitOK || !strings.Contains(r.stdout, "succeeded") {
		t.Fatalf("status as tenant: %v", r)
	}
	if r := b.run(t, "--nats-tenant", "acme", "dlq", "list"); r.code == exitOK || !strings.Contains(r.stderr, "admin NATS user") {
		t.Fatalf("dlq list as tenant: %v", r)
	}
	if r := b.run(t, "--nats-tenant", "acme", "submit", "--tenant", "globex", "--source", src); r.code == exitOK || !strings.Contains(r.stderr, `this client acts for tenant "acme"`) {
		t.Fatalf("submit for globex as acme: %v", r)
	}
}
