package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/spf13/cobra"
)

func claimCommand(ctx context.Context, e env, conn *natsConfig) *cobra.Command {
	var o claimOptions
	c := &cobra.Command{
		Use:   "claim APP --tenant T [flags]",
		Short: "a claim URL for an unclaimed app (a fresh one once its code has expired)",
		Long: `Prints a claim URL for the app: its current code while it has more than
an hour to live, else (or with --fresh) a new one the workers issue and
record. Exit status 1 when the app is unknown, claimed or expired, or
no worker answers.`,
	}
	c.Flags().StringVar(&o.tenant, "tenant", "", "the app's tenant (required)")
	c.Flags().StringVar(&o.returnURL, "return-url", "", "URL the claim page sends the user back to")
	c.Flags().BoolVar(&o.fresh, "fresh", false, "issue a new code even if the current one has hours left")
	c.Flags().BoolVar(&o.json, "json", false, "print the answer as one JSON line")
	return command(c, func(pos []string) int { return runClaim(ctx, e, *conn, pos, o) })
}

// claimOptions are the claim command's flags.
type claimOptions struct {
	tenant, returnURL string
	fresh, json       bool
}

// runClaim prints a claim URL for an unclaimed app.
func runClaim(ctx context.Context, e env, conn natsConfig, pos []string, o claimOptions) int {
	var check error
	switch {
	case len(pos) != 1:
		check = usagef("give exactly one app id")
	case o.tenant == "" && conn.Tenant == "":
		check = usagef("--tenant is required")
	default:
		check = errors.Join(checkID(pos[0]), checkTenant(o.tenant))
	}
	if err := errors.Join(check, conn.validate()); err != nil {
		fmt.Fprintf(e.stderr, "enqueue claim: %v\n", err)
		return exitUsage
	}
	sess, err := connect(ctx, conn)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue claim: %v\n", err)
		return exitFailed
	}
	defer sess.close()
	ans, err := sess.client.RefreshClaim(ctx, o.tenant, pos[0], jobs.ClaimAsk{ReturnURL: o.returnURL, Fresh: o.fresh})
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue claim: %s: %v\n", pos[0], err)
		return exitFailed
	}
	if o.json {
		data, _ := json.Marshal(ans)
		fmt.Fprintln(e.stdout, string(data))
		return exitOK
	}
	what := "current code"
	if ans.Fresh {
		what = "new code"
	}
	fmt.Fprintf(e.stdout, "%s\n  %s, valid until %s (%s)\n", ans.ClaimURL, what, ans.ExpiresAt.Local().Format(time.DateTime), until(ans.ExpiresAt))
	return exitOK
}

func appsCommand(ctx context.Context, e env, conn *natsConfig) *cobra.Command {
	list := &cobra.Command{
		Use:   "list [flags]",
		Short: "one row per app, then the count per state",
		Long: `One row per app: tenant, app, state, versions, age of the last version,
claim code expiry, URL; then the count per state. --state keeps one
state; --older-than D the live, idle apps whose last version is older
than D: what APP_TTL=D would delete (a dry run from any machine).`,
	}
	show := &cobra.Command{
		Use:   "show APP --tenant T [flags]",
		Short: "an app's record: project, database, domain, versions, claim, expiry",
		Long: `The app's record: project, database, domain, versions, claim, expiry,
and the API calls spent on its claims and expiry.`,
	}
	for _, c := range []*cobra.Command{list, show} {
		o := &appsOptions{sub: c.Name()}
		c.Flags().StringVar(&o.tenant, "tenant", "", "the apps' tenant")
		c.Flags().BoolVar(&o.json, "json", false, "print each app's record as a JSON line")
		if c == list {
			c.Flags().StringVar(&o.state, "state", "", "keep the apps in this `state` only: "+strings.Join(appStateNames(), ", "))
			c.Flags().DurationVar(&o.olderThan, "older-than", 0, "keep the live apps whose last version is older than this: what APP_TTL=D would expire")
			_ = c.RegisterFlagCompletionFunc("state", completeWords(appStateNames()...))
		}
		command(c, func(pos []string) int { return runApps(ctx, e, *conn, pos, *o) })
	}
	return group(e, &cobra.Command{
		Use:   "apps",
		Short: "list the apps and their states, or show one",
	}, list, show)
}

// appsOptions are the flags of apps list and apps show.
type appsOptions struct {
	sub, tenant, state string
	olderThan          time.Duration
	json               bool
}

// runApps lists the apps or shows one.
func runApps(ctx context.Context, e env, conn natsConfig, pos []string, o appsOptions) int {
	sub := o.sub
	var check error
	switch {
	case sub == "show" && len(pos) != 1:
		check = usagef("give exactly one app id")
	case sub == "show" && o.tenant == "" && conn.Tenant == "":
		check = usagef("--tenant is required")
	case sub == "list" && len(pos) > 0:
		check = usagef("unexpected argument %q", pos[0])
	case o.olderThan < 0:
		check = usagef("--older-than must not be negative")
	case o.state != "" && !slices.Contains(appStateNames(), o.state):
		check = usagef("--state %q: one of %s", o.state, strings.Join(appStateNames(), ", "))
	case sub == "show":
		check = errors.Join(checkID(pos[0]), checkTenant(o.tenant))
	default:
		check = checkTenant(o.tenant)
	}
	if err := errors.Join(check, conn.validate()); err != nil {
		fmt.Fprintf(e.stderr, "enqueue apps %s: %v\n", sub, err)
		return exitUsage
	}
	sess, err := connect(ctx, conn)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue apps %s: %v\n", sub, err)
		return exitFailed
	}
	defer sess.close()
	if sub == "show" {
		a, err := sess.client.App(ctx, o.tenant, pos[0])
		switch {
		case err != nil:
			fmt.Fprintf(e.stderr, "enqueue apps show: %v\n", err)
			return exitFailed
		case a == nil:
			fmt.Fprintf(e.stderr, "enqueue apps show: %s: no such app\n", pos[0])
			return exitFailed
		}
		if o.json {
			data, _ := json.Marshal(a)
			fmt.Fprintln(e.stdout, string(data))
		} else {
			showApp(e, a)
		}
		return exitOK
	}
	apps, err := sess.client.Apps(ctx, o.tenant)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue apps list: %v\n", err)
		return exitFailed
	}
	counts := map[jobs.AppState]int{}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if !o.json {
		fmt.Fprintln(tw, "TENANT\tAPP\tSTATE\tVERSIONS\tLAST VERSION\tCLAIM CODE\tURL")
	}
	now := time.Now()
	for i := range apps {
		a := &apps[i]
		if o.state != "" && string(a.State) != o.state {
			continue
		}
		if o.olderThan > 0 && (a.State != jobs.AppLive || a.Busy != "" || now.Sub(a.LastVersionAt) < o.olderThan) {
			continue
		}
		counts[a.State]++
		if o.json {
			data, _ := json.Marshal(a)
			fmt.Fprintln(e.stdout, string(data))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.Tenant, a.ID, a.State, a.Versions, ago(now, a.LastVersionAt), claimLife(a, now), dash(a.URL))
	}
	var parts []string
	for _, s := range jobs.AppStates() {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if o.json {
		fmt.Fprintf(e.stderr, "%d apps\n", sum(counts))
		return exitOK
	}
	_ = tw.Flush()
	fmt.Fprintf(e.stdout, "%d apps: %s\n", sum(counts), dash(strings.Join(parts, ", ")))
	return exitOK
}

// appStateNames are the states --state takes.
func appStateNames() []string {
	var names []string
	for _, x := range jobs.AppStates() {
		names = append(names, string(x))
	}
	return names
}

func sum(m map[jobs.AppState]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func showApp(e env, a *jobs.App) {
	now := time.Now()
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(w, "%s\t%s\n", k, v) }
	row("app", a.Tenant+"/"+a.ID)
	row("state", string(a.State))
	row("versions", fmt.Sprintf("%d (first %s, last %s, %s)", a.Versions, dash(a.FirstRequest), dash(a.LastRequest), ago(now, a.LastVersionAt)))
	if a.Busy != "" {
		row("in flight", a.Busy+" since "+ago(now, a.BusySince))
	}
	row("url", dash(a.URL))
	row("domain", dash(a.Domain))
	row("project", dash(strings.TrimSpace(a.ProjectID+" "+a.ProjectName)))
	row("database", dash(strings.TrimSpace(a.StoreID+" "+a.StoreName)))
	row("claim code", claimLife(a, now))
	if a.State == jobs.AppClaimed {
		row("claimed", fmt.Sprintf("%s via %s; database %s", ago(now, a.ClaimedAt), a.ClaimedVia, dash(a.Database)))
	}
	if a.Expiry != nil {
		row("expiry", fmt.Sprintf("by %s since %s; project deleted %t, database deleted %t", a.Expiry.Owner, ago(now, a.Expiry.Since), a.Expiry.ProjectDeleted, a.Expiry.StoreDeleted))
	}
	if !a.ExpiredAt.IsZero() {
		row("expired", ago(now, a.ExpiredAt))
	}
	row("upkeep calls", fmt.Sprintf("%d claim codes, %d claim checks, %d for expiry", a.Calls.Claims, a.Calls.Checks, a.Calls.Expiry))
	_ = w.Flush()
}

func claimLife(a *jobs.App, now time.Time) string {
	switch {
	case a.Claim == nil:
		return "-"
	case now.After(a.Claim.ExpiresAt):
		return "expired " + ago(now, a.Claim.ExpiresAt)
	}
	return "valid " + until(a.Claim.ExpiresAt)
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

func until(t time.Time) string {
	return "for " + time.Until(t).Round(time.Minute).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
