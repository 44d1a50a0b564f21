package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/deployq/deployq/pkg/jobs"
)

const dlqUsageText = `Usage:
  enqueue dlq list [--tenant T] [--json]
  enqueue dlq show ID [--tenant T] [--json]
  enqueue dlq replay ID [--tenant T] [--wait] [--json] [--timeout D]
  enqueue dlq replay --all [--tenant T] [--wait] [--json] [--timeout D]
  enqueue dlq purge [--tenant T] --yes

Failed and rejected requests land in the dead-letter stream with every
attempt's error. Run a subcommand with -h for its flags.
`

func runDLQ(ctx context.Context, e env, conn natsConfig, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, dlqUsageText)
		return exitUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list":
		return runDLQList(ctx, e, conn, rest)
	case "show":
		return runDLQShow(ctx, e, conn, rest)
	case "replay":
		return runDLQReplay(ctx, e, conn, rest)
	case "purge":
		return runDLQPurge(ctx, e, conn, rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, dlqUsageText)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "enqueue dlq: unknown subcommand %q; subcommands are list, show, replay, purge\n", sub)
	return exitUsage
}

// dlqSession checks what was parsed and connects. It reports the problem
// itself and returns the exit status when it returns no session.
func dlqSession(ctx context.Context, e env, conn natsConfig, cmd string, check error) (*session, int) {
	if err := errors.Join(check, conn.validate()); err != nil {
		fmt.Fprintf(e.stderr, "enqueue %s: %v\n", cmd, err)
		return nil, exitUsage
	}
	sess, err := connect(ctx, conn)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue %s: %v\n", cmd, err)
		return nil, exitFailed
	}
	return sess, exitOK
}

func runDLQList(ctx context.Context, e env, conn natsConfig, args []string) int {
	fs := newFlagSet("enqueue dlq list", e.stderr)
	conn.register(fs)
	tenant := fs.String("tenant", "", "only this tenant's dead letters")
	asJSON := fs.Bool("json", false, "print each entry as one JSON line (the count goes to stderr)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage:\n  enqueue dlq list [--tenant T] [--json]\n\nLists dead letters, oldest first.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageExit(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "enqueue dlq list: unexpected argument %q (show one entry with `enqueue dlq show ID`)\n", pos[0])
		return exitUsage
	}
	sess, code := dlqSession(ctx, e, conn, "dlq list", checkTenant(*tenant))
	if sess == nil {
		return code
	}
	defer sess.close()

	entries, err := sess.client.DeadLetters(ctx, *tenant)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue dlq list: %v\n", err)
		return exitFailed
	}
	count := countDeadLetters(len(entries), *tenant)
	if *asJSON {
		for _, entry := range entries {
			data, err := json.Marshal(entry)
			if err != nil {
				fmt.Fprintf(e.stderr, "enqueue dlq list: %v\n", err)
				return exitFailed
			}
			fmt.Fprintf(e.stdout, "%s\n", data)
		}
		fmt.Fprintln(e.stderr, count)
		return exitOK
	}
	writeDeadLetters(e.stdout, entries)
	fmt.Fprintln(e.stdout, count)
	return exitOK
}

// countDeadLetters is list's last line: "3 dead letters (tenant acme)".
func countDeadLetters(n int, tenant string) string {
	s := strconv.Itoa(n) + " dead letter"
	if n != 1 {
		s += "s"
	}
	if tenant != "" {
		s += " (tenant " + tenant + ")"
	}
	return s
}

// writeDeadLetters prints one aligned row per entry; nothing, not even the
// header, when there are none.
func writeDeadLetters(w io.Writer, entries []jobs.DeadLetterEntry) {
	if len(entries) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tTENANT\tID\tREASON\tSTEP\tCODE\tMESSAGE")
	for _, entry := range entries {
		step, code, msg := "-", "-", ""
		if ee := entry.Error; ee != nil {
			step, code = firstNonEmpty(string(ee.Step), "-"), firstNonEmpty(ee.Code, "-")
			msg = shortMessage(ee)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			entry.Seq, formatTime(entry.At), entry.Tenant, entry.ID, entry.Reason, step, code, msg)
	}
	_ = tw.Flush()
}

// maxMessage bounds the message column: the whole message is in `dlq show`.
const maxMessage = 60

// shortMessage is an error's message on one line and cut short, without
// the "invalid request: " every rejection starts with.
func shortMessage(ee *jobs.EventError) string {
	msg := strings.Join(strings.Fields(strings.TrimPrefix(ee.Message, "invalid request: ")), " ")
	return truncate(msg, maxMessage)
}

func runDLQShow(ctx context.Context, e env, conn natsConfig, args []string) int {
	fs := newFlagSet("enqueue dlq show", e.stderr)
	conn.register(fs)
	asJSON := fs.Bool("json", false, "print the entry as one JSON object")
	tenant := fs.String("tenant", "", "the request's tenant (needed when several tenants used the id)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage:\n  enqueue dlq show ID [--tenant T] [--json]\n\nShows a request's latest dead letter: why, every attempt, and the request.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageExit(err)
	}
	if len(pos) != 1 {
		fmt.Fprintln(e.stderr, "enqueue dlq show: give exactly one request id")
		return exitUsage
	}
	id := pos[0]
	check := checkID(id)
	if check == nil {
		check = checkTenant(*tenant)
	}
	sess, code := dlqSession(ctx, e, conn, "dlq show", check)
	if sess == nil {
		return code
	}
	defer sess.close()

	entry, err := sess.client.DeadLetter(ctx, *tenant, id)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue dlq show: %s: %v\n", id, err)
		return exitFailed
	}
	if *asJSON {
		data, err := json.Marshal(entry)
		if err != nil {
			fmt.Fprintf(e.stderr, "enqueue dlq show: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(e.stdout, "%s\n", data)
		return exitOK
	}
	writeDeadLetter(e.stdout, entry)
	return exitOK
}

// writeDeadLetter prints everything a dead letter holds, one labelled
// fact per line as status does, then the error, the attempts and the
// request as it was sent.
func writeDeadLetter(w io.Writer, entry *jobs.DeadLetterEntry) {
	rows := []detail{
		{"request", entry.ID},
		{"tenant", entry.Tenant},
		{"reason", string(entry.Reason)},
		{"at", formatTime(entry.At)},
		{"dlq seq", strconv.FormatUint(entry.Seq, 10)},
		{"subject", entry.Subject},
		{"stream seq", strconv.FormatUint(entry.StreamSeq, 10)},
		{"deliveries", strconv.FormatUint(entry.Deliveries, 10)},
	}
	for _, r := range rows {
		if r.value != "" {
			fmt.Fprintf(w, "%-10s %s\n", r.key, r.value)
		}
	}
	if ee := entry.Error; ee != nil {
		fmt.Fprintln(w, "error")
		for _, d := range []detail{{"step", string(ee.Step)}, {"code", ee.Code}, {"field", ee.Field}, {"message", ee.Message}} {
			if d.value != "" {
				fmt.Fprintf(w, "  %-8s %s\n", d.key+":", d.value)
			}
		}
	}
	if len(entry.Attempts) > 0 {
		fmt.Fprintf(w, "%-10s %d failed\n", "attempts", len(entry.Attempts))
		for _, ae := range entry.Attempts {
			fmt.Fprintf(w, "  %s %s %s/%s: %s\n", formatTime(ae.At), ae.Step, ae.Class, ae.Reason, ae.Message)
		}
	}
	switch {
	case len(entry.Request) > 0:
		var body bytes.Buffer
		if err := json.Indent(&body, entry.Request, "  ", "  "); err != nil {
			body.Reset()
			body.Write(entry.Request)
		}
		fmt.Fprintf(w, "body\n  %s\n", body.String())
	case len(entry.RequestRaw) > 0:
		fmt.Fprintf(w, "%-10s not a request, %d bytes, sha256 %s\n", "body", entry.RequestSize, entry.RequestSHA256)
	}
}

func runDLQPurge(ctx context.Context, e env, conn natsConfig, args []string) int {
	fs := newFlagSet("enqueue dlq purge", e.stderr)
	conn.register(fs)
	tenant := fs.String("tenant", "", "only this tenant's dead letters (default: every tenant's)")
	yes := fs.Bool("yes", false, "really delete them; without it, purge only says what it would delete")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage:\n  enqueue dlq purge [--tenant T] --yes\n\nDeletes dead letters; they can no longer be replayed.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageExit(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "enqueue dlq purge: unexpected argument %q (select dead letters with --tenant)\n", pos[0])
		return exitUsage
	}
	sess, code := dlqSession(ctx, e, conn, "dlq purge", checkTenant(*tenant))
	if sess == nil {
		return code
	}
	defer sess.close()

	whose := "of every tenant"
	if *tenant != "" {
		whose = "of tenant " + *tenant
	}
	if !*yes {
		// Counting needs the server, but what to refuse is a usage
		// matter: say what --yes would do, and do nothing.
		entries, err := sess.client.DeadLetters(ctx, *tenant)
		if err != nil {
			fmt.Fprintf(e.stderr, "enqueue dlq purge: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(e.stderr, "enqueue dlq purge: would delete %s %s; nothing deleted: add --yes to delete them\n",
			countOnly(len(entries)), whose)
		return exitUsage
	}
	n, err := sess.client.PurgeDeadLetters(ctx, *tenant)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue dlq purge: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(e.stdout, "deleted %s %s\n", countOnly(n), whose)
	return exitOK
}

// countOnly is "1 dead letter", "3 dead letters".
func countOnly(n int) string { return countDeadLetters(n, "") }
