package main

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
)

func TestDefaultName(t *testing.T) {
	t.Parallel()
	tests := []struct{ path, want string }{
		{"nextjs-prisma", "nextjs-prisma"},
		{"/src/My App", "my-app"},
		{"apps/My App.tgz", "my-app"},
		{"build.tar.gz", "build"},
		{"./a---b", "a-b"},
		{"__Hidden__", "hidden"},
		{"Café Crème", "caf-cr-me"},
		{"---", "app"},
		{strings.Repeat("x", 100), strings.Repeat("x", maxNameLen)},
		{strings.Repeat("x", maxNameLen-1) + "-yy", strings.Repeat("x", maxNameLen-1)},
	}
	for _, tt := range tests {
		got := defaultName(tt.path)
		if got != tt.want {
			t.Errorf("defaultName(%q) = %q; want %q", tt.path, got, tt.want)
		}
		// Every default must pass the worker's own check.
		r := jobs.Request{Name: got}
		if err := r.Validate(jobs.Limits{}); err != nil && strings.Contains(err.Error(), "name") {
			t.Errorf("defaultName(%q) = %q is refused: %v", tt.path, got, err)
		}
	}
}

func TestParseRequestsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ line, want string }{
		{`{"tenant":"acme"}`, "f.jsonl:1: source: missing"},
		{`{"tenant":"acme","source":"a"`, "f.jsonl:1: not valid JSON: the object is cut short"},
		{`{"tenant":"acme","source":"a",}`, "f.jsonl:1: not valid JSON:"},
		{`["acme"]`, "f.jsonl:1: must be a JSON object"},
		{`{"tenant":1,"source":"a"}`, "f.jsonl:1: tenant: must be a JSON string, not number"},
		{`{"tenant":"acme","source":"a","env":{"A":1}}`, "f.jsonl:1: env"},
		{`{"tenant":"acme","source":"a"} {"tenant":"b"}`, "f.jsonl:1: more than one JSON value"},
		{`{"tenant":"acme","source":"a","Region":"iad1","typo":1}`, "f.jsonl:1: typo: unknown field"},
	}
	for _, tt := range tests {
		_, errs := parseRequests(strings.NewReader(tt.line), "f.jsonl", "/base")
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
			t.Errorf("%s: want one error containing %q; got %v", tt.line, tt.want, errs)
		}
	}
}

func TestParseRequestsResolvesSourcesAgainstTheFile(t *testing.T) {
	t.Parallel()
	plans, errs := parseRequests(strings.NewReader(`
# comment
{"tenant":"acme","source":"apps/web"}

{"tenant":"acme","source":"/abs/site.tgz","name":"site"}
`), "f.jsonl", "/base")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got := []string{plans[0].where, plans[0].source, plans[0].req.Name, plans[1].where, plans[1].source, plans[1].req.Name}
	want := []string{"f.jsonl:3", "/base/apps/web", "web", "f.jsonl:5", "/abs/site.tgz", "site"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	t.Parallel()
	// No server listens here: reaching the connection means the command
	// line was read as meant.
	env := map[string]string{"NATS_URL": "nats://127.0.0.1:1"}
	r := runWith(t, env, "status", "id1", "--json", "--tenant", "acme")
	if r.code != exitFailed || !strings.Contains(r.stderr, "cannot connect to NATS") {
		t.Errorf("flags after the id: want a connection attempt; got %v", r)
	}
	// After "--", what looks like a flag is an argument: here a bad id.
	r = runWith(t, env, "status", "--tenant", "acme", "--", "--tenant=x")
	if r.code != exitUsage || !strings.Contains(r.stderr, `request id "--tenant=x"`) {
		t.Errorf(`after "--": want --tenant=x taken as the id; got %v`, r)
	}
}

func TestRedactedURL(t *testing.T) {
	t.Parallel()
	c := natsConfig{URL: "nats://u:pw@a:4222, nats://tok3n@b:4222,nats://c:4222"}
	got := c.redactedURL()
	if want := "nats://u:xxxxx@a:4222,nats://xxxxx@b:4222,nats://c:4222"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	s := summary{succeeded: 20, failed: 1, elapsed: 12345 * time.Millisecond}
	if got, want := s.String(), "20 succeeded, 1 failed, 0 rejected in 12.3s"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	s = summary{succeeded: 1, cancelled: 1, unfinished: 2, unsent: 3, elapsed: time.Second}
	if got, want := s.String(), "1 succeeded, 0 failed, 0 rejected, 1 cancelled, 2 unfinished, 3 not submitted in 1s"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ev   jobs.Event
		want string
	}{
		{jobs.Event{Type: jobs.TypeSucceeded, Data: jobs.EventData{URL: "https://a.vercel.app", ClaimURL: "https://vercel.com/claim-deployment?code=c"}},
			"  url:     https://a.vercel.app\n  claim:   https://vercel.com/claim-deployment?code=c\n"},
		{jobs.Event{Type: jobs.TypeFailed, Data: jobs.EventData{Step: "wait_ready", Cleaned: []string{"database", "project"},
			Error: &jobs.EventError{Step: "wait_ready", Code: "BUILD_FAILED", Message: "build failed"}}},
			"  step:    wait_ready\n  code:    BUILD_FAILED\n  message: build failed\n  cleaned: database, project\n"},
		{jobs.Event{Type: jobs.TypeRejected, Data: jobs.EventData{
			Error: &jobs.EventError{Code: "invalid_request", Field: "tenant", Message: "invalid request: tenant: missing"}}},
			"  field:   tenant\n  reason:  missing\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		writeOutcome(&b, &tt.ev)
		if b.String() != tt.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tt.ev.Type, b.String(), tt.want)
		}
	}
}

func TestTTYDisplayRedrawsInPlace(t *testing.T) {
	t.Parallel()
	a := &tracked{plan: &plan{req: jobs.Request{ID: "a", Tenant: "acme"}}}
	bb := &tracked{plan: &plan{req: jobs.Request{ID: "bbbb", Tenant: "globex"}}}
	var out, errs bytes.Buffer
	d := newTTYDisplay(&out, &errs, 40, []*tracked{a, bb})
	d.begin()
	a.state, a.sub = stateQueued, &jobs.Submitted{ID: "a"}
	a.steps, a.step = 5, jobs.StepUploadSource
	d.event(a, &jobs.Event{})
	end := &jobs.Event{Type: jobs.TypeSucceeded, Data: jobs.EventData{RequestID: "a", Tenant: "acme",
		URL: "https://a-very-long-project-name.vercel.app", ClaimURL: "https://vercel.com/claim-deployment?code=x"}}
	a.end = end
	d.warn(io.ErrUnexpectedEOF)
	d.end(summary{succeeded: 1, unfinished: 1, elapsed: time.Second})

	frames := strings.Split(out.String(), "\x1b[2A") // cursor up over the 2-line table
	if len(frames) != 3 {
		t.Fatalf("want a first frame and 2 redraws; got %d frames:\n%q", len(frames), out.String())
	}
	wantLines := [][]string{
		{"a     acme    submitting", "bbbb  globex  submitting"},
		{"a     acme    [6/8] creating deployment", "bbbb  globex  submitting"},
	}
	for i, want := range wantLines {
		for _, w := range want {
			if !strings.Contains(frames[i], "\r\x1b[2K"+w+"\n") {
				t.Errorf("frame %d lacks line %q:\n%q", i, w, frames[i])
			}
		}
	}
	last := frames[2]
	if !strings.Contains(last, "\r\x1b[2Ka     acme    ✓ succeeded  https://a-v…\n") {
		t.Errorf("the table line is not cut to the width:\n%q", last)
	}
	for _, w := range []string{"claim:   https://vercel.com/claim-deployment?code=x", "1 succeeded, 0 failed, 0 rejected, 1 unfinished in 1s"} {
		if !strings.Contains(last, w) {
			t.Errorf("the end lacks %q:\n%s", w, last)
		}
	}
	if !strings.Contains(errs.String(), "unexpected EOF") {
		t.Errorf("warnings are printed after the table; stderr: %q", errs.String())
	}
	if strings.Contains(out.String(), "\x1b[32m") {
		t.Error("coloured without being asked (color is off by default)")
	}
	// With colour, the outcome is green.
	out.Reset()
	d = newTTYDisplay(&out, &errs, 40, []*tracked{a})
	d.color = true
	d.end(summary{succeeded: 1})
	if !strings.Contains(out.String(), "\x1b[32ma  acme  ✓ succeeded") {
		t.Errorf("no green success:\n%q", out.String())
	}
}

func TestProgressText(t *testing.T) {
	t.Parallel()
	failed := &jobs.Event{Type: jobs.TypeFailed, Data: jobs.EventData{Step: "wait_ready", Error: &jobs.EventError{Step: "wait_ready", Code: "BUILD_FAILED"}}}
	rejected := &jobs.Event{Type: jobs.TypeRejected, Data: jobs.EventData{Error: &jobs.EventError{Field: "name", Message: "invalid request: name: missing"}}}
	tests := []struct {
		t    tracked
		want string
	}{
		{tracked{}, "submitting"},
		{tracked{state: stateQueued, sub: &jobs.Submitted{}}, "queued"},
		{tracked{state: stateQueued, sub: &jobs.Submitted{Duplicate: true}}, "queued (duplicate id)"},
		{tracked{state: stateQueued, steps: 8, step: jobs.StepCreateClaim}, "[8/8] create_claim"},
		{tracked{state: stateQueued, steps: 5, step: jobs.StepUploadSource, waiting: "waiting for API budget: deployments.create", waitSince: time.Now().Add(-40 * time.Second)},
			"[6/8] waiting for API budget: deployments.create 40s"},
		// The step in progress and its time so far: a build is "building".
		{tracked{state: stateQueued, steps: 6, step: jobs.StepCreateDeployment, since: time.Now().Add(-12 * time.Second)}, "[7/8] building 12s"},
		{tracked{state: stateQueued, sub: &jobs.Submitted{Duplicate: true}, end: &jobs.Event{Type: jobs.TypeSucceeded, Data: jobs.EventData{URL: "https://x.vercel.app"}}},
			"= duplicate of an earlier job: succeeded  https://x.vercel.app"},
		{tracked{end: failed}, "✗ failed at wait_ready: BUILD_FAILED"},
		{tracked{end: rejected}, "✗ rejected: name: missing"},
	}
	for _, tt := range tests {
		if got := progressText(&tt.t); got != tt.want {
			t.Errorf("got %q; want %q", got, tt.want)
		}
	}
}
