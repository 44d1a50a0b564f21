package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/spf13/cobra"
)

func cancelCommand(ctx context.Context, e env, conn *natsConfig) *cobra.Command {
	var o cancelOptions
	c := &cobra.Command{
		Use:   "cancel ID --tenant T [flags]",
		Short: "stop a running or queued request",
		Long: `A running job stops, deletes the project and database it created and
ends with a cancelled event; a queued one never runs; for an id no
worker has seen, the cancel is recorded and the request will not run
if it arrives. Exit status 1 when the job had already finished. --wait
follows the job to its cancelled event and shows what was cleaned up
(exit status 1 if it ended otherwise first); --json prints that event.`,
	}
	c.Flags().StringVar(&o.tenant, "tenant", "", "the request's tenant (required)")
	c.Flags().BoolVar(&o.wait, "wait", false, "wait for the cancelled event and show what was cleaned up")
	c.Flags().BoolVar(&o.json, "json", false, "with --wait: print the terminal CloudEvent as one JSON line and nothing else on stdout")
	c.Flags().DurationVar(&o.timeout, "timeout", 30*time.Minute, "with --wait: give up after this long (exit status 3)")
	return command(c, func(pos []string) int { return runCancel(ctx, e, *conn, pos, o) })
}

// cancelOptions are the cancel command's flags.
type cancelOptions struct {
	tenant     string
	wait, json bool
	timeout    time.Duration
}

func runCancel(ctx context.Context, e env, conn natsConfig, pos []string, o cancelOptions) int {
	var check error
	switch {
	case len(pos) != 1:
		check = usagef("give exactly one request id")
	case o.tenant == "":
		check = usagef("--tenant is required: a cancel is recorded under the request's tenant")
	case o.json && !o.wait:
		check = usagef("--json goes with --wait")
	case o.timeout <= 0:
		check = usagef("--timeout must be positive")
	default:
		check = errors.Join(checkID(pos[0]), checkTenant(o.tenant))
	}
	if err := errors.Join(check, conn.validate()); err != nil {
		fmt.Fprintf(e.stderr, "enqueue cancel: %v\n", err)
		return exitUsage
	}
	id := pos[0]

	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, errTimedOut)
	defer cancel()
	sess, err := connect(ctx, conn)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue cancel: %v\n", err)
		return exitFailed
	}
	defer sess.close()

	// Taken before the cancel: the job's end comes after it.
	var after uint64
	if o.wait {
		if after, err = lastEventSeq(ctx, sess.js); err != nil {
			fmt.Fprintf(e.stderr, "enqueue cancel: %v\n", err)
			return exitFailed
		}
	}
	// A rejected request has no checkpoint, only its event: Cancel would
	// record a cancel for it as for a request not seen yet.
	if status, err := sess.client.Status(ctx, o.tenant, id); err == nil && status.State == nil && status.Last != nil && status.Last.Terminal() {
		fmt.Fprintf(e.stderr, "enqueue cancel: %s: already finished with status %s; nothing to cancel\n", id, status.Last.Short())
		return exitFailed
	}
	st, err := sess.client.Cancel(ctx, o.tenant, id)
	if errors.Is(err, jobs.ErrFinished) && st != nil {
		fmt.Fprintf(e.stderr, "enqueue cancel: %s: already finished with status %s; nothing to cancel\n", id, st.Status)
		return exitFailed
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue cancel: %s: %v\n", id, err)
		return exitFailed
	}
	line := id + " " + o.tenant + " " + cancelNote(st)
	if o.json {
		fmt.Fprintln(e.stderr, "enqueue cancel: "+line)
	} else {
		fmt.Fprintln(e.stdout, line)
	}
	if !o.wait {
		return exitOK
	}
	return waitCancelled(ctx, e, sess, o.tenant, id, max(st.Run, 1), after, o.json)
}

// cancelNote says what a cancel did, from the checkpoint Cancel returned.
func cancelNote(st *jobs.JobState) string {
	switch {
	case st.Status == jobs.StatusRunning:
		step := "no step completed yet"
		if st.Step != "" {
			step = "last step " + string(st.Step)
		}
		return "cancel requested: the job is running (" + step + "); it stops, deletes what it created and ends cancelled"
	case st.Seq == 0 && st.Run <= 1:
		// No message owns the job: no worker has taken the request, which
		// may wait in the stream or not be sent yet.
		return "cancel recorded: no worker has started this request; if it is queued or arrives later, it will not run"
	}
	return "cancelled: the job is queued and will not run"
}

// waitCancelled follows the request's events from past stream sequence
// after until its run ends, and returns the exit status: 0 only when it
// ended cancelled.
func waitCancelled(ctx context.Context, e env, sess *session, tenant, id string, run int, after uint64, asJSON bool) int {
	f, err := follow(ctx, sess.js, []string{jobs.EventSubject(tenant, id)}, 1, after)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue cancel: %v\n", err)
		return exitFailed
	}
	defer f.stop()
	for {
		var rc received
		select {
		case rc = <-f.events:
		case <-ctx.Done():
			what, code := "interrupted", exitInterrupted
			if errors.Is(context.Cause(ctx), errTimedOut) {
				what, code = "timed out", exitTimeout
			}
			fmt.Fprintf(e.stderr, "enqueue cancel: %s: %s before the job ended; the cancel stays recorded\n", id, what)
			return code
		}
		if rc.err != nil {
			fmt.Fprintf(e.stderr, "enqueue cancel: %v\n", rc.err)
			if rc.fatal {
				return exitFailed
			}
			continue
		}
		ev := rc.ev
		if max(ev.Data.Run, 1) != run {
			continue // an earlier run's event
		}
		if asJSON {
			if !ev.Terminal() {
				continue
			}
			var line bytes.Buffer
			if err := json.Compact(&line, rc.raw); err != nil {
				fmt.Fprintf(e.stderr, "enqueue cancel: terminal event: %v\n", err)
				return exitFailed
			}
			fmt.Fprintf(e.stdout, "%s\n", line.Bytes())
		} else {
			fmt.Fprintln(e.stdout, eventLine(&ev))
			if ev.Terminal() {
				writeOutcome(e.stdout, &ev)
			}
		}
		if !ev.Terminal() {
			continue
		}
		if ev.Type != jobs.TypeCancelled {
			fmt.Fprintf(e.stderr, "enqueue cancel: %s: the job ended %s before the cancel took effect\n", id, ev.Short())
			return exitFailed
		}
		return exitOK
	}
}
