package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/tarball"
	"github.com/spf13/cobra"
)

// submitOptions are the submit command's flags.
type submitOptions struct {
	batchOptions
	file   string
	source string
	req    jobs.Request // the fields given as flags, for a single request
	env    envFlag
	repeat int
}

func submitCommand(ctx context.Context, e env, conn *natsConfig) *cobra.Command {
	o := &submitOptions{batchOptions: batchOptions{cmd: "submit", verb: "submitted"}}
	c := &cobra.Command{
		Use:   "submit --tenant T --source DIR|FILE.tgz [flags]\n  enqueue submit --file requests.jsonl [flags]",
		Short: "pack a source and publish one deploy request, or every line of a JSONL file",
		Long: `Packs a source directory (or takes a prebuilt .tgz) and publishes one deploy
request, or every request of a JSONL file: one JSON object per line,
{"id","tenant","name","framework","source","region","returnUrl","env",
"priority","overQuota","app"}, where only tenant and source are required
and source is relative to the file. Blank lines and lines starting with
'#' are skipped; every line is checked before any is submitted.

Resubmitting an id never deploys twice: a duplicate is shown as such and
follows the first submission's job. With --wait, a terminal shows a live
table with each request's phase and its time so far.`,
		Example: `  enqueue submit --tenant acme --source ./app --wait
  enqueue submit --tenant acme --source ./app --app chat-42 --wait   # a new version of app chat-42
  enqueue submit --file examples/requests.jsonl --repeat 7 --wait --json`,
	}
	fs := c.Flags()
	fs.SortFlags = false
	fs.StringVar(&o.req.Tenant, "tenant", "", "tenant the deploy belongs to ([a-z0-9_-])")
	fs.StringVar(&o.source, "source", "", "directory to pack, or a prebuilt .tgz/.tar.gz `path`")
	fs.StringVar(&o.file, "file", "", "JSONL `file` of requests, one JSON object per line (sources relative to the file)")
	fs.StringVar(&o.req.Name, "name", "", "project name prefix (default: the source's base name, made valid)")
	fs.StringVar(&o.req.Framework, "framework", "", "Vercel framework preset, e.g. nextjs (default: detected by Vercel)")
	fs.StringVar(&o.req.ReturnURL, "return-url", "", "where the claim flow returns the user (https, or http on localhost)")
	fs.StringVar(&o.req.ID, "id", "", "request id, the idempotency key (default: a fresh UUID)")
	fs.StringVar(&o.req.App, "app", "", "the `app` this deploys a version of ([A-Za-z0-9_-]): its first request makes its\nproject and database, later ones deploy into them; a claimed or expired app\nrefuses new versions (app_claimed, app_expired)")
	fs.StringVar(&o.req.Region, "region", "", "Prisma Postgres region, e.g. iad1 (default: the worker's)")
	fs.Var(&o.env, "env", "environment variable of the new project; repeatable")
	fs.StringVar((*string)(&o.req.Priority), "priority", "", "interactive (default) or batch: within the tenant's share, batch work\nyields to interactive work and is never starved")
	fs.StringVar((*string)(&o.req.OverQuota), "over-quota", "", "wait (default) or reject: past the tenant's quota (TENANT_QUOTAS), wait until\nit allows the deploy, or end at once with a rejected event (quota_exceeded)")
	fs.IntVar(&o.repeat, "repeat", 1, "submit each request `N` times; copies get fresh ids, or <id>-1 … <id>-N")
	fs.BoolVar(&o.wait, "wait", false, "follow events until every request has ended")
	fs.BoolVar(&o.json, "json", false, "print JSON lines: each request's terminal CloudEvent with --wait (and nothing\nelse on stdout), one line per submitted request without")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long (exit status 3)")
	_ = c.RegisterFlagCompletionFunc("priority", completeWords(string(jobs.PriorityInteractive), string(jobs.PriorityBatch)))
	_ = c.RegisterFlagCompletionFunc("over-quota", completeWords(string(jobs.OverQuotaWait), string(jobs.OverQuotaReject)))
	_ = c.MarkFlagFilename("source", "tgz", "tar.gz")
	_ = c.MarkFlagFilename("file", "jsonl")
	return command(c, func(pos []string) int {
		if err := o.check(pos, fs.Changed); err != nil {
			fmt.Fprintf(e.stderr, "enqueue submit: %v\n", err)
			return exitUsage
		}
		return runSubmit(ctx, e, *conn, o)
	})
}

// check checks what the flags and arguments say together; changed
// reports which flags were given.
func (o *submitOptions) check(pos []string, changed func(string) bool) error {
	if len(pos) > 0 {
		return usagef("unexpected argument %q (give the source with --source)", pos[0])
	}
	switch {
	case o.repeat < 1:
		return usagef("--repeat must be at least 1")
	case o.timeout <= 0:
		return usagef("--timeout must be positive")
	case o.file != "":
		// The file gives every request's fields; a flag would be ignored.
		for _, name := range []string{"tenant", "source", "name", "framework", "return-url", "id", "region", "env", "priority", "over-quota", "app"} {
			if changed(name) {
				return usagef("--%s cannot be combined with --file: every request's fields come from the file", name)
			}
		}
	case o.source == "":
		return usagef("give --source DIR|FILE.tgz (and --tenant), or --file requests.jsonl")
	}
	o.req.Env = o.env.m
	return nil
}

// plan is one request about to be submitted.
type plan struct {
	// where names the request in messages: "requests.jsonl:3", or empty
	// for the command line.
	where   string
	line    int
	source  string
	req     jobs.Request
	archive *tarball.Archive
}

// planError locates a problem in the input: file and line, or the flag at
// fault on the command line.
type planError struct {
	where string
	line  int
	err   error
}

func (e *planError) Error() string {
	msg := e.err.Error()
	var verr *jobs.ValidationError
	if errors.As(e.err, &verr) {
		field := verr.Field
		if e.where == "" {
			field = flagFor(field)
		}
		msg = verr.Reason
		if field != "" {
			msg = field + ": " + msg
		}
	}
	if e.where == "" {
		return msg
	}
	return e.where + ": " + msg
}

func (e *planError) Unwrap() error { return e.err }

// flagFor names the flag that sets a request field, so that a command-line
// mistake is reported in the terms the user typed.
func flagFor(field string) string {
	switch {
	case field == "returnUrl":
		return "--return-url"
	case strings.HasPrefix(field, "source"):
		return "--source"
	case field == "version" || field == "":
		return field
	}
	return "--" + field
}

func runSubmit(ctx context.Context, e env, conn natsConfig, o *submitOptions) int {
	// The lines that parse are checked too, so one run lists every
	// mistake in the file, in line order.
	plans, errs := o.plans()
	errs = append(errs, prepare(plans, jobs.DefaultLimits())...)
	slices.SortStableFunc(errs, func(a, b error) int { return cmp.Compare(lineOf(a), lineOf(b)) })
	if len(errs) > 0 {
		reportPlanErrors(e, o, errs, len(plans))
		return exitUsage
	}
	if err := conn.validate(); err != nil {
		fmt.Fprintf(e.stderr, "enqueue submit: %v\n", err)
		return exitUsage
	}

	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, errTimedOut)
	defer cancel()
	sess, err := connect(ctx, conn)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue submit: %v\n", err)
		return exitFailed
	}
	defer sess.close()
	return submitAll(ctx, e, sess, plans, o)
}

var errTimedOut = errors.New("timed out")

// plans returns the requests to submit, --repeat applied, without their
// sources packed, and the lines of the file that could not be read.
func (o *submitOptions) plans() ([]*plan, []error) {
	var plans []*plan
	var errs []error
	if o.file != "" {
		plans, errs = readRequestsFile(o.file)
	} else {
		req := o.req
		if req.Name == "" {
			req.Name = defaultName(o.source)
		}
		plans = []*plan{{source: o.source, req: req}}
	}
	if o.repeat == 1 {
		return plans, errs
	}
	out := make([]*plan, 0, len(plans)*o.repeat)
	for _, p := range plans {
		for n := 1; n <= o.repeat; n++ {
			c := *p
			// A named id stays a key the caller can retry with: each
			// copy gets its own derived id instead of a random one.
			if p.req.ID != "" {
				c.req.ID = p.req.ID + "-" + strconv.Itoa(n)
			}
			out = append(out, &c)
		}
	}
	return out, errs
}

// prepare packs every source, fills in what Submit would (version, id,
// source reference) and validates each request exactly as the worker
// will, so that nothing is submitted unless everything would be accepted.
// It returns at most one error per input line.
func prepare(plans []*plan, limits jobs.Limits) []error {
	srcs := newSources(limits.MaxSourceBytes)
	seen := make(map[string]string, len(plans)) // id → where it was first used
	var errs []error
	failed := map[string]bool{}
	fail := func(p *plan, err error) {
		if !failed[p.where] {
			errs = append(errs, &planError{where: p.where, line: p.line, err: err})
		}
		failed[p.where] = true
	}
	for _, p := range plans {
		a, err := srcs.load(p.source)
		if err != nil {
			fail(p, err)
			continue
		}
		p.archive = a
		p.req.Version = jobs.RequestVersion
		if p.req.ID == "" {
			p.req.ID = jobs.NewID()
		}
		p.req.Source = jobs.SourceRef{Bucket: jobs.BucketSources, SHA1: a.SHA1, Size: a.Size}
		if err := p.req.Validate(limits); err != nil {
			fail(p, err)
			continue
		}
		// The stream would silently drop the second request with an id.
		if first, dup := seen[p.req.ID]; dup {
			fail(p, fmt.Errorf("id %q is already used by %s; ids must be unique", p.req.ID, orCommandLine(first)))
			continue
		}
		seen[p.req.ID] = p.where
		if data, err := json.Marshal(p.req); err != nil {
			fail(p, err)
		} else if len(data) > limits.MaxRequestBytes {
			fail(p, fmt.Errorf("request is %d bytes of JSON, more than the %d allowed (env values are the usual cause)", len(data), limits.MaxRequestBytes))
		}
	}
	return errs
}

func lineOf(err error) int {
	var perr *planError
	if errors.As(err, &perr) {
		return perr.line
	}
	return 0
}

func orCommandLine(where string) string {
	if where == "" {
		return "another copy"
	}
	return where
}

// maxReported bounds the errors printed for one file: past that, the
// rest are usually the same mistake repeated.
const maxReported = 20

func reportPlanErrors(e env, o *submitOptions, errs []error, planned int) {
	for i, err := range errs {
		if i == maxReported {
			fmt.Fprintf(e.stderr, "… and %d more\n", len(errs)-maxReported)
			break
		}
		var perr *planError
		if o.file == "" || !errors.As(err, &perr) || perr.where == "" {
			fmt.Fprintf(e.stderr, "enqueue submit: %v\n", err)
		} else {
			fmt.Fprintln(e.stderr, err)
		}
	}
	if o.file != "" {
		fmt.Fprintf(e.stderr, "enqueue submit: nothing submitted: fix the %d error(s) above in %s\n", len(errs), o.file)
	}
}

// envFlag collects repeated --env KEY=VALUE flags.
type envFlag struct{ m map[string]string }

func (f *envFlag) String() string { return "" }

// Type is the value's name in help: --env KEY=VALUE.
func (f *envFlag) Type() string { return "KEY=VALUE" }

func (f *envFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if _, dup := f.m[k]; dup {
		return fmt.Errorf("%s is given twice", k)
	}
	if f.m == nil {
		f.m = map[string]string{}
	}
	f.m[k] = v
	return nil
}
