package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

// budgetLine is one API bucket the fleet shares, as stats shows it.
type budgetLine struct {
	Key string `json:"key"` // <team>.<endpoint>
	// PausedFor is how long the endpoint stays paused (a 429 or 402);
	// BookedFor how far ahead its calls are booked (callers wait that long).
	PausedFor time.Duration `json:"pausedForNs,omitempty"`
	BookedFor time.Duration `json:"bookedForNs,omitempty"`
}

func statsCommand(ctx context.Context, e env, conn *natsConfig) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "stats [flags]",
		Short: "the queue at a glance: waiting and running per tenant, the oldest, DLQ, apps, budget",
		Long: `Requests in the queue and the oldest; per tenant, waiting, running (or
held for a quota) and batch requests and the oldest; dead letters; apps
by state; API endpoints paused or booked ahead in the shared budget.
Needs the admin NATS user.`,
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the overview as one JSON object")
	return command(c, func(pos []string) int { return runStats(ctx, e, *conn, pos, asJSON) })
}

// runStats prints the whole queue at a glance.
func runStats(ctx context.Context, e env, conn natsConfig, pos []string, asJSON bool) int {
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "enqueue stats: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	if err := conn.validate(); err != nil {
		fmt.Fprintf(e.stderr, "enqueue stats: %v\n", err)
		return exitUsage
	}
	sess, err := connect(ctx, conn)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue stats: %v\n", err)
		return exitFailed
	}
	defer sess.close()
	o, err := sess.client.Overview(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue stats: %v\n", err)
		return exitFailed
	}
	budgets, err := budgetLines(ctx, sess.js, o.At)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue stats: warning: %v\n", err)
	}
	if asJSON {
		data, _ := json.Marshal(struct {
			*jobs.Overview
			Budget []budgetLine `json:"budget"`
		}{o, budgets})
		fmt.Fprintln(e.stdout, string(data))
		return exitOK
	}
	oldest := ""
	if !o.Oldest.IsZero() {
		oldest = ", the oldest waiting " + ago(o.At, o.Oldest)
	}
	fmt.Fprintf(e.stdout, "queue    %d requests%s; %d dead letters\n", o.Queued, oldest, o.DeadLetters)
	if len(o.Tenants) > 0 {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TENANT\tWAITING\tRUNNING\tBATCH\tOLDEST")
		for _, t := range o.Tenants {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%s\n", t.Tenant, t.Waiting, t.Running, t.Batch, ago(o.At, t.Oldest))
		}
		_ = tw.Flush()
	}
	var apps []string
	for _, s := range jobs.AppStates() {
		if n := o.Apps[s]; n > 0 {
			apps = append(apps, fmt.Sprintf("%d %s", n, s))
		}
	}
	fmt.Fprintf(e.stdout, "apps     %s\n", dash(strings.Join(apps, ", ")))
	var busy []string
	for _, b := range budgets {
		switch {
		case b.PausedFor > 0:
			busy = append(busy, fmt.Sprintf("%s paused for %s", b.Key, b.PausedFor.Round(time.Second)))
		case b.BookedFor > time.Second:
			busy = append(busy, fmt.Sprintf("%s booked %s ahead", b.Key, b.BookedFor.Round(time.Second)))
		}
	}
	if len(busy) == 0 {
		fmt.Fprintf(e.stdout, "budget   %d endpoints, none paused or booked ahead\n", len(budgets))
	} else {
		fmt.Fprintf(e.stdout, "budget   %s\n", strings.Join(busy, "; "))
	}
	return exitOK
}

// budgetLines reads the fleet's API buckets (BUDGET=shared) at now.
func budgetLines(ctx context.Context, js jetstream.JetStream, now time.Time) ([]budgetLine, error) {
	kv, err := js.KeyValue(ctx, budget.BucketBudget)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil // no shared budget
	}
	if err != nil {
		return nil, fmt.Errorf("budget bucket: %w", err)
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("budget bucket: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []budgetLine
	for e := range w.Updates() {
		if e == nil {
			break
		}
		if strings.HasPrefix(e.Key(), "tenant-quota.") {
			continue // a tenant's quota, not an endpoint's bucket
		}
		var st budget.State
		if json.Unmarshal(e.Value(), &st) != nil {
			continue
		}
		n := now.UnixNano()
		out = append(out, budgetLine{Key: e.Key(), PausedFor: time.Duration(max(st.PausedUntil-n, 0)), BookedFor: time.Duration(max(st.TAT-n, 0))})
	}
	return out, nil
}
