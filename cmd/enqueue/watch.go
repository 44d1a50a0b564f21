package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/deployq/deployq/pkg/jobs"
)

func runWatch(ctx context.Context, e env, conn natsConfig, args []string) int {
	fs := newFlagSet("enqueue watch", e.stderr)
	conn.register(fs)
	var f jobs.WatchFilter
	fs.StringVar(&f.Tenant, "tenant", "", "only this tenant's events")
	fs.StringVar(&f.ID, "id", "", "only this request's events")
	fs.BoolVar(&f.FromStart, "from-start", false, "replay stored events first (default: only new events)")
	asJSON := fs.Bool("json", false, "print each CloudEvent as one JSON line")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage:\n  enqueue watch [--tenant T] [--id ID] [--from-start] [--json]\n\nStreams events until SIGINT or SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageExit(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "enqueue watch: unexpected argument %q (select a request with --id)\n", pos[0])
		return exitUsage
	}
	check := checkTenant(f.Tenant)
	if f.ID != "" {
		check = errors.Join(check, checkID(f.ID))
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
		if *asJSON {
			data, err := json.Marshal(ev)
			if err != nil {
				fmt.Fprintf(e.stderr, "enqueue watch: %v\n", err)
				continue
			}
			fmt.Fprintf(e.stdout, "%s\n", data)
			continue
		}
		line := formatTime(ev.Time) + " " + eventLine(&ev)
		if ev.Terminal() {
			line += inlineOutcome(&ev)
		}
		fmt.Fprintln(e.stdout, line)
	}
	if ctx.Err() != nil {
		return exitOK // interrupted: the normal way to stop watching
	}
	return exitFailed
}
