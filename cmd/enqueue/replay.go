package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/spf13/cobra"
)

// replayOptions are the flags of dlq replay.
type replayOptions struct {
	batchOptions
	id     string
	all    bool
	tenant string
}

func replayCommand(ctx context.Context, e env, conn *natsConfig) *cobra.Command {
	o := &replayOptions{batchOptions: batchOptions{cmd: "dlq replay", verb: "replayed"}}
	c := &cobra.Command{
		Use:   "replay ID|--all [flags]",
		Short: "run dead-lettered requests again under their own ids",
		Long: `Runs a dead-lettered request again under its own id, as a new run (its
events carry data.run = 2, 3, …). --all replays the latest dead letter
of every id (of --tenant) except jobs running again or succeeded since.
--wait, --json and --timeout work as for submit, following the new run
only. A request whose source tarball has expired cannot be replayed:
submit it again.`,
	}
	c.Flags().BoolVar(&o.all, "all", false, "replay every dead-lettered request (of --tenant) whose job has not succeeded and is not running")
	c.Flags().StringVar(&o.tenant, "tenant", "", "the request's tenant (needed when several tenants used the id); with --all: only this tenant's dead letters")
	c.Flags().BoolVar(&o.wait, "wait", false, "follow the new runs until each has ended")
	c.Flags().BoolVar(&o.json, "json", false, "print JSON lines: the new runs' terminal events with --wait, the replays without")
	c.Flags().DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long (exit status 3)")
	return command(c, func(pos []string) int { return runDLQReplay(ctx, e, *conn, pos, *o) })
}

// checkReplay checks the flags and arguments of dlq replay and takes the id.
func checkReplay(o *replayOptions, pos []string) error {
	switch {
	case o.all && len(pos) > 0:
		return usagef("give a request id or --all, not both")
	case !o.all && len(pos) != 1:
		return usagef("give exactly one request id, or --all")
	case o.timeout <= 0:
		return usagef("--timeout must be positive")
	}
	if !o.all {
		o.id = pos[0]
		if err := checkID(o.id); err != nil {
			return err
		}
	}
	return checkTenant(o.tenant)
}

func runDLQReplay(ctx context.Context, e env, conn natsConfig, pos []string, opts replayOptions) int {
	o := &opts
	if err := checkReplay(o, pos); err != nil {
		fmt.Fprintf(e.stderr, "enqueue dlq replay: %v\n", err)
		return exitUsage
	}
	if err := conn.validate(); err != nil {
		fmt.Fprintf(e.stderr, "enqueue dlq replay: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, errTimedOut)
	defer cancel()
	sess, err := connect(ctx, conn)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue dlq replay: %v\n", err)
		return exitFailed
	}
	defer sess.close()

	plans, code := replayPlans(ctx, e, sess, o)
	if len(plans) == 0 {
		return code
	}
	// The new runs' events come after this point. Following from past it
	// keeps the first run's failure from being taken for the replay's
	// outcome, as does the run number each replay reports.
	after, err := lastEventSeq(ctx, sess.js)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue dlq replay: %v\n", err)
		return exitFailed
	}
	o.keepGoing = o.all
	return runBatch(ctx, e, sess, plans, o.batchOptions, oneByOne(replaySender(sess)), after)
}

// replayPlans picks the requests to replay: the one named, or with --all
// the latest dead letter of each id, as Client.ReplayAll would. It leaves
// out (and says why) a job that is running again or has succeeded since:
// its dead letter is history, and a replay would deploy it once more. With
// no plans, the exit status says whether that is a failure.
func replayPlans(ctx context.Context, e env, sess *session, o *replayOptions) ([]*plan, int) {
	var entries []jobs.DeadLetterEntry
	if o.all {
		all, err := sess.client.DeadLetters(ctx, o.tenant)
		if err != nil {
			fmt.Fprintf(e.stderr, "enqueue dlq replay: %v\n", err)
			return nil, exitFailed
		}
		seen := map[[2]string]bool{}
		for i := len(all) - 1; i >= 0; i-- {
			// A stray message's dead letter (no id) is no request's.
			key := [2]string{all[i].Tenant, all[i].ID}
			if all[i].ID != "" && !seen[key] {
				seen[key] = true
				entries = append(entries, all[i])
			}
		}
		// Oldest first, as they failed.
		for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 {
			entries[i], entries[j] = entries[j], entries[i]
		}
	} else {
		entry, err := sess.client.DeadLetter(ctx, o.tenant, o.id)
		if err != nil {
			fmt.Fprintf(e.stderr, "enqueue dlq replay: %s: %v\n", o.id, err)
			return nil, exitFailed
		}
		entries = append(entries, *entry)
	}

	var plans []*plan
	for _, entry := range entries {
		why, err := notReplayable(ctx, sess, &entry)
		if err != nil {
			fmt.Fprintf(e.stderr, "enqueue dlq replay: %s: %v\n", entry.ID, err)
			return nil, exitFailed
		}
		if why != "" {
			fmt.Fprintf(e.stderr, "enqueue dlq replay: %s: not replayed: %s\n", entry.ID, why)
			if !o.all {
				return nil, exitFailed
			}
			continue
		}
		// The dead letter's own id and tenant are what Replay uses; the
		// rest only shows the request (--json prints its source).
		var req jobs.Request
		_ = json.Unmarshal(entry.Request, &req)
		req.ID, req.Tenant = entry.ID, entry.Tenant
		plans = append(plans, &plan{req: req})
	}
	if len(plans) == 0 && o.all {
		msg := "nothing to replay"
		if len(entries) == 0 {
			msg = "no dead letters to replay"
			if o.tenant != "" {
				msg += " for tenant " + o.tenant
			}
		}
		if o.json {
			fmt.Fprintf(e.stderr, "enqueue dlq replay: %s\n", msg)
		} else {
			fmt.Fprintln(e.stdout, msg)
		}
	}
	return plans, exitOK
}

// notReplayable says why a dead letter is not to be replayed, "" when it
// is.
func notReplayable(ctx context.Context, sess *session, entry *jobs.DeadLetterEntry) (string, error) {
	if entry.Request == nil {
		return fmt.Sprintf("the dead-lettered message is not a request (%d bytes); it cannot run", entry.RequestSize), nil
	}
	st, err := sess.client.Status(ctx, entry.Tenant, entry.ID)
	switch {
	case errors.Is(err, jobs.ErrUnknownRequest):
		return "", nil
	case err != nil:
		return "", err
	case st.State == nil:
		return "", nil
	case st.State.Status == jobs.StatusSucceeded:
		return fmt.Sprintf("it succeeded since (run %d); submit it under a new id to deploy it again", max(st.State.Run, 1)), nil
	case !st.State.Done():
		return "its job is " + string(st.State.Status) + ", so it runs again already; follow it with `enqueue watch --id " + entry.ID + " --from-start`", nil
	}
	return "", nil
}

// replaySender replays one request and reports the run it started, read
// back from the job's checkpoint: the events of that run are the
// replay's.
func replaySender(sess *session) sender {
	return func(ctx context.Context, t *tracked) (*jobs.Submitted, int, error) {
		id := t.req.ID
		sub, err := sess.client.Replay(ctx, t.req.Tenant, id)
		if err != nil {
			// Most of Replay's errors name the id already.
			if !strings.HasPrefix(err.Error(), "replay "+id+":") {
				err = fmt.Errorf("replay %s: %w", id, err)
			}
			return nil, 0, err
		}
		run := 0
		if st, err := sess.client.Status(ctx, sub.Tenant, sub.ID); err == nil && st.State != nil {
			run = max(st.State.Run, 1)
		}
		return sub, run, nil
	}
}
