package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

// Exit codes. They are part of the command's interface: scripts and the
// demo branch on them.
const (
	exitOK          = 0   // every request succeeded (or the command did its job)
	exitFailed      = 1   // a deploy failed or was rejected, nothing to act on, or NATS could not be used
	exitUsage       = 2   // bad flags, unreadable source, invalid request, purge without --yes: nothing done
	exitTimeout     = 3   // --timeout passed before every request ended
	exitInterrupted = 130 // SIGINT/SIGTERM while submitting or waiting (128+SIGINT, as shells do)
)

const usageText = `enqueue publishes deploy requests to deployq and follows their progress.

Usage:
  enqueue [connection flags] <command> [flags]

Commands:
  submit   pack a source and publish one deploy request, or every line of a JSONL file
  status   show a request's job state and last event
  watch    stream events until interrupted
  cancel   stop a running or queued request
  stats    the queue at a glance: waiting and running per tenant, the oldest, DLQ, apps, budget
  claim    a claim URL for an unclaimed app (a fresh one once its code has expired)
  apps     list the apps and their states, or show one
  dlq      list, show, replay or purge dead-lettered (failed and rejected) requests
  help     show this text, or a command's flags: enqueue help submit, enqueue help dlq replay

submit (one request):
  enqueue submit --tenant T --source DIR|FILE.tgz [flags]
    --tenant T          tenant the deploy belongs to (required; [a-z0-9_-])
    --source PATH       directory to pack, or a prebuilt .tgz/.tar.gz (required)
    --name N            project name prefix; defaults to the source's base name
                        made valid (lowercase a-z 0-9 . _ -, no '---', at most 87 chars)
    --framework F       Vercel framework preset, e.g. nextjs (default: detected by Vercel)
    --return-url U      where the claim flow returns the user (https, or http on localhost)
    --id ID             idempotency key (default: a fresh UUID); resubmitting an id never deploys twice
    --app APP           the app this deploys a version of ([A-Za-z0-9_-]): its first request makes
                        its project and database, later ones deploy into the same project; a
                        claimed or expired app refuses new versions (app_claimed, app_expired)
    --region R          Prisma Postgres region, e.g. iad1 (default: the worker's)
    --env KEY=VALUE     environment variable of the new project; repeatable
    --priority P        interactive (default) or batch: within the tenant's share,
                        batch work yields to interactive work and is never starved
    --over-quota O      wait (default) or reject: past the tenant's quota (TENANT_QUOTAS),
                        wait until it allows the deploy, or end at once with a rejected
                        event (code quota_exceeded, and when the quota allows another)

submit (a file of requests):
  enqueue submit --file requests.jsonl [flags]
    One JSON object per line: {"id","tenant","name","framework","source",
    "region","returnUrl","env","priority","overQuota","app"}; only tenant and source are required, source
    is relative to the file. Blank lines and lines starting with '#' are
    skipped. Every line is checked before any is submitted.

submit (both forms):
    --repeat N          submit each request N times (default 1); copies get fresh
                        ids, or <id>-1 … <id>-N when the request names an id
    --wait              follow events until every request has ended
    --json              with --wait: print each request's terminal CloudEvent as one
                        JSON line and nothing else on stdout; without --wait: one
                        JSON line per submitted request
    --timeout D         give up after D (default 30m), exit status 3

status:
  enqueue status ID [--tenant T] [--json]
    Prints the job's status, last step, project, URL, claim URL, attempts,
    errors and last event; for a request no worker has taken yet, that it
    is queued and since when. Exit status 1 when the id is unknown.

watch:
  enqueue watch [--tenant T] [--id ID] [--from-start] [--logs] [--json]
    Prints one line per event (or the CloudEvent as a JSON line with --json)
    until SIGINT/SIGTERM; with --id, until the request's terminal event
    (exit status 0 if it succeeded, 1 otherwise). --from-start replays
    stored events first. --logs (with --id and --tenant) prints the build's
    log lines as they come; start it right after the submit.

cancel:
  enqueue cancel ID --tenant T [--wait] [--json] [--timeout D]
    A running job stops, deletes the project and database it created and
    ends with a cancelled event; a queued one never runs; for an id no
    worker has seen, the cancel is recorded and the request will not run
    if it arrives. Exit status 1 when the job had already finished. --wait
    follows the job to its cancelled event and shows what was cleaned up
    (exit status 1 if it ended otherwise first); --json prints that event.

stats:
  enqueue stats [--json]
    Requests in the queue and the oldest; per tenant, waiting, running (or
    held for a quota) and batch requests and the oldest; dead letters; apps
    by state; API endpoints paused or booked ahead in the shared budget.

claim:
  enqueue claim APP --tenant T [--return-url U] [--fresh] [--json]
    Prints a claim URL for the app: its current code while it has more than
    an hour to live, else (or with --fresh) a new one the workers issue and
    record. Exit status 1 when the app is unknown, claimed or expired, or
    no worker answers.

apps:
  enqueue apps list [--tenant T] [--state S] [--older-than D] [--json]
    One row per app: tenant, app, state, versions, age of the last version,
    claim code expiry, URL; then the count per state. --state keeps one
    state (creating, live, claimed, expiring, expired, failed);
    --older-than D the live, idle apps whose last version is older than D:
    what APP_TTL=D would delete (a dry run from any machine).
  enqueue apps show APP --tenant T [--json]
    The app's record: project, database, domain, versions, claim, expiry,
    and the API calls spent on its claims and expiry.

dlq:
  enqueue dlq list [--tenant T] [--json]
    One row per dead letter, oldest first: DLQ sequence, time, tenant, id,
    reason, step, code, message; then a count. --json prints each entry as
    a JSON line (the count goes to stderr).
  enqueue dlq show ID [--json]
    A request's latest dead letter: reason, error, every failed attempt,
    deliveries, subject and the request as sent. Exit status 1 when the id
    has none.
  enqueue dlq replay ID | --all [--tenant T] [--wait] [--json] [--timeout D]
    Runs a dead-lettered request again under its own id, as a new run
    (its events carry data.run = 2, 3, …). --all replays the latest dead
    letter of every id (of --tenant) except jobs running again or
    succeeded since. --wait, --json and --timeout work as for submit,
    following the new run only. A request whose source tarball has
    expired cannot be replayed: submit it again.
  enqueue dlq purge [--tenant T] --yes
    Deletes dead letters (of --tenant, else all) and releases the source
    tarballs they kept. Without --yes it says what it would delete, deletes
    nothing and exits 2.

Output: on a terminal, submit --wait keeps a live table (the step in
progress and its time so far) in colour; NO_COLOR=1 turns colour off,
TERM=dumb or a pipe gives one line per event.

Connection flags (accepted before or after the command):
  --nats-url URL       NATS server(s), comma-separated; env NATS_URL (default nats://127.0.0.1:4222)
  --nats-creds FILE    NATS credentials file; env NATS_CREDS
  --nats-tls-ca FILE   CA bundle to verify the server; env NATS_TLS_CA
  --nats-tls-cert FILE client certificate; env NATS_TLS_CERT (with --nats-tls-key)
  --nats-tls-key FILE  client key; env NATS_TLS_KEY
  --nats-tenant T      connect as tenant T's NATS user (deploy/nats/accounts.conf):
                       submit, wait, status and watch for T only, replies on
                       _INBOX_T; env NATS_TENANT
  --nats-inbox-prefix P  reply prefix, if not _INBOX_<tenant>; env NATS_INBOX_PREFIX

Exit status:
  0  every request succeeded (status, watch, cancel, dlq: the command worked)
  1  a request failed or was rejected; status of an unknown id; cancel of a
     finished job; dlq show/replay of an id without a dead letter, or a
     replay that could not be published; NATS unusable
  2  usage or configuration error: bad flag, unreadable source, invalid request,
     dlq purge without --yes (nothing was submitted or deleted)
  3  --timeout passed before every request ended
  130 interrupted while submitting or waiting; submitted requests still run
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// env is everything run takes from the process, so tests can call run
// with their own.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

// run executes one command line and returns the process exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if asksHelp(args) {
		// Help that was asked for is the command's output, on stdout
		// with status 0, whether asked as -h, --help or `enqueue help`.
		stderr = stdout
	}
	e := env{getenv: getenv, stdout: stdout, stderr: stderr}
	conn := natsConfigFromEnv(getenv)

	global := newFlagSet("enqueue", stderr)
	conn.register(global)
	global.Usage = func() { fmt.Fprint(stderr, usageText) }
	if err := global.Parse(args); err != nil {
		return usageExit(err)
	}
	rest := global.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	cmd, cmdArgs := rest[0], rest[1:]
	switch cmd {
	case "submit":
		return runSubmit(ctx, e, conn, cmdArgs)
	case "status":
		return runStatus(ctx, e, conn, cmdArgs)
	case "watch":
		return runWatch(ctx, e, conn, cmdArgs)
	case "cancel":
		return runCancel(ctx, e, conn, cmdArgs)
	case "dlq":
		return runDLQ(ctx, e, conn, cmdArgs)
	case "claim":
		return runClaim(ctx, e, conn, cmdArgs)
	case "stats":
		return runStats(ctx, e, conn, cmdArgs)
	case "apps":
		return runApps(ctx, e, conn, cmdArgs)
	case "help":
		return runHelp(e, cmdArgs)
	}
	fmt.Fprintf(stderr, "enqueue: unknown command %q; commands are submit, status, watch, cancel, stats, claim, apps, dlq (see enqueue help)\n", cmd)
	return exitUsage
}

// asksHelp reports whether the command line asks for help (-h, -help,
// --help before a "--").
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func runHelp(e env, args []string) int {
	var cmd []string
	switch {
	case len(args) == 1 && slices.Contains([]string{"submit", "status", "watch", "cancel", "stats", "claim", "apps", "dlq"}, args[0]):
		cmd = args
	case len(args) == 2 && args[0] == "dlq" && slices.Contains([]string{"list", "show", "replay", "purge"}, args[1]):
		cmd = args
	default:
		fmt.Fprint(e.stdout, usageText)
		return exitOK
	}
	// The command's own -h prints its flags with their defaults.
	return run(context.Background(), append(cmd, "-h"), e.getenv, e.stdout, e.stdout)
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses fs and returns the positional arguments. Unlike
// fs.Parse it accepts flags after positional arguments, so that
// `enqueue status ID --json` works as people type it; "--" ends flags.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// usageExit maps a flag parse error to an exit status; the flag package
// has already printed the message and the usage.
func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// usageError is a mistake on the command line, reported with exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}
