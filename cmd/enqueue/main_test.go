package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/natsembed"
)

// bundle is a running deployq (embedded NATS, simulator, workers) and a
// private copy of examples/ for one test.
type bundle struct {
	h        *jobstest.Harness
	examples string
	env      map[string]string
}

func setup(t *testing.T, cfg jobstest.Config) *bundle {
	t.Helper()
	b := &bundle{h: jobstest.Start(t, cfg), examples: copyExamples(t)}
	b.env = map[string]string{"NATS_URL": b.h.NATS.ClientURL()}
	return b
}

// copyExamples copies examples/ so a test can add files beside them
// without touching the repository.
func copyExamples(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "examples")
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("..", "..", "examples"))); err != nil {
		t.Fatal(err)
	}
	return dst
}

// result is what one command line produced.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

func (b *bundle) run(t *testing.T, args ...string) result {
	t.Helper()
	return runWith(t, b.env, args...)
}

// runWith calls run as main would, with env as the whole environment.
func runWith(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// writeFile writes content under dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	examples := copyExamples(t)
	app := filepath.Join(examples, "nextjs-prisma")
	// No server listens here: a case that wrongly connected would exit 1.
	env := map[string]string{"NATS_URL": "nats://127.0.0.1:1"}
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "Commands:"},
		{"unknown command", []string{"deploy"}, `unknown command "deploy"`},
		{"unknown flag", []string{"submit", "--bogus"}, "unknown flag: --bogus"},
		{"no source", []string{"submit", "--tenant", "acme"}, "give --source"},
		{"missing tenant", []string{"submit", "--source", app}, "--tenant: missing"},
		{"bad tenant", []string{"submit", "--tenant", "Acme", "--source", app}, "--tenant: must be"},
		{"bad framework", []string{"submit", "--tenant", "acme", "--source", app, "--framework", "nextjs13"}, "--framework:"},
		{"bad return url", []string{"submit", "--tenant", "acme", "--source", app, "--return-url", "http://example.com"}, "--return-url: must use https"},
		{"reserved env", []string{"submit", "--tenant", "acme", "--source", app, "--env", "DATABASE_URL=x"}, "--env: DATABASE_URL is set by the database connection"},
		{"env without =", []string{"submit", "--tenant", "acme", "--source", app, "--env", "FOO"}, "want KEY=VALUE"},
		{"env twice", []string{"submit", "--tenant", "acme", "--source", app, "--env", "A=1", "--env", "A=2"}, "A is given twice"},
		{"missing source", []string{"submit", "--tenant", "acme", "--source", filepath.Join(examples, "nope")}, "no such directory or file"},
		{"source not a tarball", []string{"submit", "--tenant", "acme", "--source", filepath.Join(app, "package.json")}, "must be a directory or a .tgz/.tar.gz file"},
		{"file with tenant", []string{"submit", "--file", "x.jsonl", "--tenant", "acme"}, "--tenant cannot be combined with --file"},
		{"missing file", []string{"submit", "--file", filepath.Join(examples, "none.jsonl")}, "no such file"},
		{"repeat zero", []string{"submit", "--tenant", "acme", "--source", app, "--repeat", "0"}, "--repeat must be at least 1"},
		{"positional", []string{"submit", app}, "unexpected argument"},
		{"tls cert without key", []string{"submit", "--tenant", "acme", "--source", app, "--nats-tls-cert", "c.pem"}, "go together"},
		{"status without id", []string{"status"}, "exactly one request id"},
		{"status wildcard id", []string{"status", "a.>"}, "must be 1 to 128 characters"},
		{"watch wildcard tenant", []string{"watch", "--tenant", "*"}, "tenant \"*\""},
		{"dlq without subcommand", []string{"dlq"}, "enqueue dlq list [--tenant T]"},
		{"dlq unknown subcommand", []string{"dlq", "replay-all"}, `unknown subcommand "replay-all"`},
		{"dlq list positional", []string{"dlq", "list", "acme"}, `unexpected argument "acme"`},
		{"dlq list bad tenant", []string{"dlq", "list", "--tenant", "*"}, "tenant \"*\""},
		{"dlq show without id", []string{"dlq", "show"}, "exactly one request id"},
		{"dlq show wildcard id", []string{"dlq", "show", ">"}, "must be 1 to 128 characters"},
		{"dlq replay without id", []string{"dlq", "replay", "--wait"}, "give exactly one request id, or --all"},
		{"dlq replay id and all", []string{"dlq", "replay", "x", "--all"}, "not both"},
		{"dlq replay bad tenant", []string{"dlq", "replay", "x", "--tenant", "Acme"}, "tenant"},
		{"dlq replay zero timeout", []string{"dlq", "replay", "--all", "--timeout", "0s"}, "--timeout must be positive"},
		{"dlq purge positional", []string{"dlq", "purge", "acme", "--yes"}, "select dead letters with --tenant"},
		{"dlq purge bad tenant", []string{"dlq", "purge", "--tenant", "A", "--yes"}, "tenant \"A\""},
		{"cancel without tenant", []string{"cancel", "x"}, "--tenant is required"},
		{"cancel without id", []string{"cancel", "--tenant", "acme"}, "exactly one request id"},
		{"cancel wildcard id", []string{"cancel", "a.*", "--tenant", "acme"}, "must be 1 to 128 characters"},
		{"cancel json without wait", []string{"cancel", "x", "--tenant", "acme", "--json"}, "--json goes with --wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runWith(t, env, tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("want exit 2 and %q in stderr; got %v", tt.want, r)
			}
			if r.stdout != "" {
				t.Errorf("stdout should be empty on a usage error; got %q", r.stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	// Help asked for, however, is on stdout with status 0, and nothing on
	// stderr.
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"help", "submit"}, {"submit", "-h"}, {"submit", "--help"}, {"help", "cancel"},
		{"help", "dlq", "replay"}, {"dlq", "purge", "-h"}, {"help", "claim"}, {"apps", "list", "-h"}} {
		r := runWith(t, nil, args...)
		if r.code != exitOK || !strings.Contains(r.stdout, "nats-url") || r.stderr != "" {
			t.Errorf("%v: want exit 0 and the flags listed on stdout; got %v", args, r)
		}
	}
	for _, args := range [][]string{{"help", "dlq"}, {"dlq", "-h"}} {
		r := runWith(t, nil, args...)
		if r.code != exitOK || !strings.Contains(r.stdout, "enqueue dlq purge [--tenant T] --yes") {
			t.Errorf("%v: want exit 0 and the dlq subcommands listed; got %v", args, r)
		}
	}
}

func TestHelpNeverShowsTheEnvironment(t *testing.T) {
	t.Parallel()
	// The connection flags take their values from the environment after
	// parsing: help shows the built-in default, never a NATS_URL's secret.
	env := map[string]string{"NATS_URL": "nats://deployq:s3cret@127.0.0.1:1", "NATS_CREDS": "/secret/path.creds"}
	for _, args := range [][]string{{"--help"}, {"submit", "--help"}, {"help", "dlq", "purge"}} {
		r := runWith(t, env, args...)
		if r.code != exitOK || strings.Contains(r.stdout, "s3cret") || strings.Contains(r.stdout, "/secret/") {
			t.Errorf("%v: the environment leaked into help, or it failed: %v", args, r)
		}
	}
	if r := runWith(t, nil, "submit", "--help"); strings.Contains(r.stdout, "--nats-tls-key") {
		t.Errorf("a command's help lists the connection flags, which enqueue --help lists: %v", r)
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{"bash": "__start_enqueue", "zsh": "#compdef enqueue", "fish": "complete -c enqueue"} {
		r := runWith(t, nil, "completion", shell)
		if r.code != exitOK || !strings.Contains(r.stdout, want) {
			t.Errorf("completion %s: want a script with %q; got exit %d, stderr %q", shell, want, r.code, r.stderr)
		}
	}
	// What the shells run on <TAB>: commands, flags, and flag values
	// from fixed lists; none of it connects to NATS.
	env := map[string]string{"NATS_URL": "nats://127.0.0.1:1"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "d"}, []string{"dlq"}},
		{[]string{"__complete", "dlq", ""}, []string{"list", "show", "replay", "purge"}},
		{[]string{"__complete", "submit", "--over"}, []string{"--over-quota"}},
		{[]string{"__complete", "submit", "--priority", ""}, []string{"interactive", "batch"}},
		{[]string{"__complete", "apps", "list", "--state", ""}, []string{"live", "claimed", "expired"}},
	} {
		r := runWith(t, env, tc.args...)
		for _, w := range tc.want {
			if r.code != exitOK || !strings.Contains(r.stdout, w+"\t") && !strings.Contains(r.stdout, w+"\n") {
				t.Errorf("%v: want %q among the completions; got %v", tc.args, w, r)
			}
		}
	}
}

func TestConnectionFailure(t *testing.T) {
	t.Parallel()
	app := filepath.Join(copyExamples(t), "nextjs-prisma")
	r := runWith(t, map[string]string{"NATS_URL": "nats://deployq:s3cret@127.0.0.1:1"},
		"submit", "--tenant", "acme", "--source", app)
	if r.code != exitFailed {
		t.Fatalf("want exit 1; got %v", r)
	}
	for _, want := range []string{"cannot connect to NATS at nats://deployq:xxxxx@127.0.0.1:1", "go run ./cmd/worker --simulate"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "s3cret") {
		t.Errorf("the password leaked into the message:\n%s", r.stderr)
	}
}

func TestStreamsNotSetUp(t *testing.T) {
	t.Parallel()
	// Reachable, with JetStream, but no worker ever created the streams.
	srv, err := natsembed.Start(natsembed.Options{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	r := runWith(t, map[string]string{"NATS_URL": srv.ClientURL()}, "status", "some-id")
	if r.code != exitFailed || !strings.Contains(r.stderr, "not set up") {
		t.Fatalf("want exit 1 saying the streams are not set up; got %v", r)
	}
}
