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
	"github.com/spf13/cobra"
)

func dlqCommand(ctx context.Context, e env, conn *natsConfig) *cobra.Command {
	var list struct {
		tenant string
		json   bool
	}
	listCmd := &cobra.Command{
		Use:   "list [flags]",
		Short: "one row per dead letter, oldest first",
		Long: `One row per dead letter, oldest first: DLQ sequence, time, tenant, id,
reason, step, code, message; then a count. --json prints each entry as
a JSON line (the count goes to stderr).`,
	}
	listCmd.Flags().StringVar(&list.tenant, "tenant", "", "only this tenant's dead letters")
	listCmd.Flags().BoolVar(&list.json, "json", false, "print each entry as one JSON line (the count goes to stderr)")
	command(listCmd, func(pos []string) int { return runDLQList(ctx, e, *conn, pos, list.tenant, list.json) })

	var show struct {
		tenant string
		json   bool
	}
	showCmd := &cobra.Command{
		Use:   "show ID [flags]",
		Short: "a request's latest dead letter: why, every attempt, the request",
		Long: `A request's latest dead letter: reason, error, every failed attempt,
deliveries, subject and the request as sent. Exit status 1 when the id
has none.`,
	}
	showCmd.Flags().StringVar(&show.tenant, "tenant", "", "the request's tenant (needed when several tenants used the id)")
	showCmd.Flags().BoolVar(&show.json, "json", false, "print the entry as one JSON object")
	command(showCmd, func(pos []string) int { return runDLQShow(ctx, e, *conn, pos, show.tenant, show.json) })

	var purge struct {
		tenant string
		yes    bool
	}
	purgeCmd := &cobra.Command{
		Use:   "purge [--tenant T] --yes",
		Short: "delete dead letters and release the source tarballs they kept",
		Long: `Deletes dead letters (of --tenant, else all) and releases the source
tarballs they kept; they can no longer be replayed. Without --yes it
says what it would delete, deletes nothing and exits 2.`,
	}
	purgeCmd.Flags().StringVar(&purge.tenant, "tenant", "", "only this tenant's dead letters (default: every tenant's)")
	purgeCmd.Flags().BoolVar(&purge.yes, "yes", false, "really delete them; without it, purge only says what it would delete")
	command(purgeCmd, func(pos []string) int { return runDLQPurge(ctx, e, *conn, pos, purge.tenant, purge.yes) })

	return group(e, &cobra.Command{
		Use:   "dlq",
		Short: "list, show, replay or purge dead-lettered (failed and rejected) requests",
		Long: `Failed and rejected requests land in the dead-letter stream with every
attempt's error, and the request as sent.`,
		Example: `  enqueue dlq list [--tenant T]
  enqueue dlq show ID
  enqueue dlq replay ID --wait
  enqueue dlq replay --all [--tenant T]
  enqueue dlq purge [--tenant T] --yes`,
	}, listCmd, showCmd, replayCommand(ctx, e, conn), purgeCmd)
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

func runDLQList(ctx context.Context, e env, conn natsConfig, pos []string, tenant string, asJSON bool) int {
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "enqueue dlq list: unexpected argument %q (show one entry with `enqueue dlq show ID`)\n", pos[0])
		return exitUsage
	}
	sess, code := dlqSession(ctx, e, conn, "dlq list", checkTenant(tenant))
	if sess == nil {
		return code
	}
	defer sess.close()

	entries, err := sess.client.DeadLetters(ctx, tenant)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue dlq list: %v\n", err)
		return exitFailed
	}
	count := countDeadLetters(len(entries), tenant)
	if asJSON {
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

func runDLQShow(ctx context.Context, e env, conn natsConfig, pos []string, tenant string, asJSON bool) int {
	if len(pos) != 1 {
		fmt.Fprintln(e.stderr, "enqueue dlq show: give exactly one request id")
		return exitUsage
	}
	id := pos[0]
	check := checkID(id)
	if check == nil {
		check = checkTenant(tenant)
	}
	sess, code := dlqSession(ctx, e, conn, "dlq show", check)
	if sess == nil {
		return code
	}
	defer sess.close()

	entry, err := sess.client.DeadLetter(ctx, tenant, id)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue dlq show: %s: %v\n", id, err)
		return exitFailed
	}
	if asJSON {
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

func runDLQPurge(ctx context.Context, e env, conn natsConfig, pos []string, tenant string, yes bool) int {
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "enqueue dlq purge: unexpected argument %q (select dead letters with --tenant)\n", pos[0])
		return exitUsage
	}
	sess, code := dlqSession(ctx, e, conn, "dlq purge", checkTenant(tenant))
	if sess == nil {
		return code
	}
	defer sess.close()

	whose := "of every tenant"
	if tenant != "" {
		whose = "of tenant " + tenant
	}
	if !yes {
		// Counting needs the server, but what to refuse is a usage
		// matter: say what --yes would do, and do nothing.
		entries, err := sess.client.DeadLetters(ctx, tenant)
		if err != nil {
			fmt.Fprintf(e.stderr, "enqueue dlq purge: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(e.stderr, "enqueue dlq purge: would delete %s %s; nothing deleted: add --yes to delete them\n",
			countOnly(len(entries)), whose)
		return exitUsage
	}
	n, err := sess.client.PurgeDeadLetters(ctx, tenant)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue dlq purge: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(e.stdout, "deleted %s %s\n", countOnly(n), whose)
	return exitOK
}

// countOnly is "1 dead letter", "3 dead letters".
func countOnly(n int) string { return countDeadLetters(n, "") }
