package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/deployq/deployq/pkg/jobs/jobstest"
)

func TestAppsVersionsListShowAndClaim(t *testing.T) {
	t.Parallel()
	b := setup(t, jobstest.Config{})
	src := filepath.Join(b.examples, "nextjs-prisma")
	for _, id := range []string{"v1", "v2"} {
		if r := b.run(t, "submit", "--tenant", "acme", "--source", src, "--app", "chat-7", "--id", id, "--wait"); r.code != exitOK {
			t.Fatalf("submit %s: %v", id, r)
		}
	}
	r := b.run(t, "apps", "list")
	if r.code != exitOK || !strings.Contains(r.stdout, "acme    chat-7  live   2") || !strings.Contains(r.stdout, "1 apps: 1 live") {
		t.Fatalf("apps list: %v", r)
	}
	r = b.run(t, "apps", "show", "chat-7", "--tenant", "acme")
	for _, want := range []string{"state         live\n", "versions      2 (first v1, last v2", "claim code    valid for 2", "upkeep calls  0 claim codes"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("apps show lacks %q\n%v", want, r)
		}
	}
	r = b.run(t, "claim", "chat-7", "--tenant", "acme")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "https://vercel.com/claim-deployment?code=") || !strings.Contains(r.stdout, "current code") {
		t.Fatalf("claim: %v", r)
	}
	if r := b.run(t, "claim", "nope", "--tenant", "acme"); r.code != exitFailed || !strings.Contains(r.stderr, "app_unknown") {
		t.Errorf("claim of an unknown app: %v", r)
	}
	if r := b.run(t, "apps", "list", "--older-than", "1h"); r.code != exitOK || !strings.Contains(r.stdout, "0 apps: -") {
		t.Errorf("apps list --older-than 1h lists a fresh app: %v", r)
	}
	if r := b.run(t, "apps", "list", "--older-than", "1ns"); r.code != exitOK || !strings.Contains(r.stdout, "1 apps: 1 live") {
		t.Errorf("apps list --older-than 1ns: %v", r)
	}
	if r := b.run(t, "apps", "list", "--state", "sideways"); r.code != exitUsage {
		t.Errorf("bad --state: %v", r)
	}
}
