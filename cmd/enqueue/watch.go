package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/spf13/cobra"
)

func watchCommand(ctx context.Context, e env, conn *natsConfig) *cobra.Command {
	var o watchOptions
	c := &cobra.Command{
		Use:   "watch [flags]",
		Short: "stream events (and a build's log) as they come",
		Long: `Prints one line per event (or the CloudEvent as a JSON line with --json)
until SIGINT or SIGTERM; with --id, until the request's terminal event
(exit status 0 if it succeeded, 1 otherwise). --from-start replays
stored events first. --logs (with --id and --tenant) prints the build's
log lines as they come, from the build's first line even when the watch
starts while it runs.`,
		Example: `  enqueue watch --tenant acme
  enqueue watch --tenant acme --id 3f0c… --logs`,
	}
	c.Flags().StringVar(&o.filter.Tenant, "tenant", "", "only this tenant's events")
	c.Flags().StringVar(&o.filter.ID, "id", "", "only this request's events, until its terminal event")
	c.Flags().BoolVar(&o.filter.FromStart, "from-start", false, "replay stored events first (default: only new events)")
	c.Flags().BoolVar(&o.json, "json", false, "print each CloudEvent as one JSON line")
	c.Flags().BoolVar(&o.logs, "logs", false, "with --id and --tenant: also print the build's log lines")
	return command(c, func(pos []string) int { return runWatch(ctx, e, *conn, pos, o) })
}

// watchOptions are the watch command's flags.
type watchOptions struct {
	filter jobs.WatchFilter
	json   bool
	logs   bool
}

func runWatch(ctx context.Context, e env, conn natsConfig, pos []string, o watchOptions) int {
	f, asJSON, logs := o.filter, o.json, o.logs
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "enqueue watch: unexpected argument %q (select a request with --id)\n", pos[0])
		return exitUsage
	}
	check := checkTenant(f.Tenant)
	if f.ID != "" {
		check = errors.Join(check, checkID(f.ID))
	}
	if logs && (f.ID == "" || (f.Tenant == "" && conn.Tenant == "")) {
		check = errors.Join(check, usagef("--logs follows one request's build: give --id and --tenant"))
	}
	if err := errors.Join(check, conn.validate()); err != nil {
		fmt.Fprintf(e.stderr, "enqueue watch: %v\n", err)
		return exitUsage
	}
	sess, err := connect(ctx, conn)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue watch: %v\n", err)
		return exitFailed
	}
	defer sess.close()

	// The log is followed before the events are: a worker asks whether
	// anyone follows when the build starts.
	var out sync.Mutex
	if logs {
		lf, err := sess.client.FollowLogs(ctx, f.Tenant, f.ID)
		if err != nil {
			fmt.Fprintf(e.stderr, "enqueue watch: %v\n", err)
			return exitFailed
		}
		defer lf.Stop()
		go func() {
			for l := range lf.Lines() {
				out.Lock()
				if asJSON {
					data, _ := json.Marshal(l)
					fmt.Fprintf(e.stdout, "%s\n", data)
				} else {
					fmt.Fprintf(e.stdout, "%s   │ %s\n", formatTime(l.At), l.Text)
				}
				out.Unlock()
			}
		}()
	}
	w, err := sess.client.Watch(ctx, f)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue watch: %v\n", err)
		return exitFailed
	}
	defer w.Stop()
	for ev, err := range w.Events() {
		if err != nil {
			// Watch goes on after an event it cannot decode and stops
			// after any other error; the loop's end tells which it was.
			fmt.Fprintf(e.stderr, "enqueue watch: %v\n", err)
			continue
		}
		out.Lock()
		if asJSON {
			data, err := json.Marshal(ev)
			if err != nil {
				fmt.Fprintf(e.stderr, "enqueue watch: %v\n", err)
			} else {
				fmt.Fprintf(e.stdout, "%s\n", data)
			}
		} else {
			line := formatTime(ev.Time) + " " + eventLine(&ev)
			if ev.Terminal() {
				line += inlineOutcome(&ev)
			}
			fmt.Fprintln(e.stdout, line)
		}
		out.Unlock()
		if f.ID != "" && ev.Terminal() && ev.Data.RequestID == f.ID {
			// One request watched: its terminal event ends the watch.
			if ev.Type == jobs.TypeSucceeded {
				return exitOK
			}
			return exitFailed
		}
	}
	if ctx.Err() != nil {
		return exitOK // interrupted: the normal way to stop watching
	}
	return exitFailed
}
