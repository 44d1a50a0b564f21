package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
)

// runClaim prints a claim URL for an unclaimed app.
func runClaim(ctx context.Context, e env, conn natsConfig, args []string) int {
	fs := newFlagSet("enqueue claim", e.stderr)
	conn.register(fs)
	tenant := fs.String("tenant", "", "the app's tenant (required)")
	returnURL := fs.String("return-url", "", "URL the claim page sends the user back to")
	fresh := fs.Bool("fresh", false, "issue a new code even if the current one has hours left")
	asJSON := fs.Bool("json", false, "print the answer as one JSON line")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage:\n  enqueue claim APP --tenant T [--return-url U] [--fresh] [--json]\n\n"+
			"Prints a claim URL for an unclaimed app; a fresh code once the last one expired.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageExit(err)
	}
	var check error
	switch {
	case len(pos) != 1:
		check = usagef("give exactly one app id")
	case *tenant == "" && conn.Tenant == "":
		check = usagef("--tenant is required")
	default:
		check = errors.Join(checkID(pos[0]), checkTenant(*tenant))
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
	ans, err := sess.client.RefreshClaim(ctx, *tenant, pos[0], jobs.ClaimAsk{ReturnURL: *returnURL, Fresh: *fresh})
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue claim: %s: %v\n", pos[0], err)
		return exitFailed
	}
	if *asJSON {
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

// runApps lists the apps or shows one.
func runApps(ctx context.Context, e env, conn natsConfig, args []string) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "show") {
		fmt.Fprintln(e.stderr, "enqueue apps: give list or show (see enqueue help apps)")
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("enqueue apps "+sub, e.stderr)
	conn.register(fs)
	tenant := fs.String("tenant", "", "the apps' tenant")
	state := fs.String("state", "", "list: keep the apps in this state only")
	olderThan := fs.Duration("older-than", 0, "list: keep the live apps whose last version is older than this: what APP_TTL=D would expire")
	asJSON := fs.Bool("json", false, "print each app's record as a JSON line")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage:\n  enqueue apps list [--tenant T] [--state S] [--older-than D] [--json]\n  enqueue apps show APP --tenant T [--json]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageExit(err)
	}
	var check error
	switch {
	case sub == "show" && len(pos) != 1:
		check = usagef("give exactly one app id")
	case sub == "show" && *tenant == "" && conn.Tenant == "":
		check = usagef("--tenant is required")
	case sub == "list" && len(pos) > 0:
		check = usagef("unexpected argument %q", pos[0])
	case *olderThan < 0:
		check = usagef("--older-than must not be negative")
	case *state != "" && !validState(*state):
		check = usagef("--state %q: one of creating, live, claimed, expiring, expired, failed", *state)
	case sub == "show":
		check = errors.Join(checkID(pos[0]), checkTenant(*tenant))
	default:
		check = checkTenant(*tenant)
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
		a, err := sess.client.App(ctx, *tenant, pos[0])
		switch {
		case err != nil:
			fmt.Fprintf(e.stderr, "enqueue apps show: %v\n", err)
			return exitFailed
		case a == nil:
			fmt.Fprintf(e.stderr, "enqueue apps show: %s: no such app\n", pos[0])
			return exitFailed
		}
		if *asJSON {
			data, _ := json.Marshal(a)
			fmt.Fprintln(e.stdout, string(data))
		} else {
			showApp(e, a)
		}
		return exitOK
	}
	apps, err := sess.client.Apps(ctx, *tenant)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue apps list: %v\n", err)
		return exitFailed
	}
	counts := map[jobs.AppState]int{}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "TENANT\tAPP\tSTATE\tVERSIONS\tLAST VERSION\tCLAIM CODE\tURL")
	}
	now := time.Now()
	for i := range apps {
		a := &apps[i]
		if *state != "" && string(a.State) != *state {
			continue
		}
		if *olderThan > 0 && (a.State != jobs.AppLive || a.Busy != "" || now.Sub(a.LastVersionAt) < *olderThan) {
			continue
		}
		counts[a.State]++
		if *asJSON {
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
	if *asJSON {
		fmt.Fprintf(e.stderr, "%d apps\n", sum(counts))
		return exitOK
	}
	_ = tw.Flush()
	fmt.Fprintf(e.stdout, "%d apps: %s\n", sum(counts), dash(strings.Join(parts, ", ")))
	return exitOK
}

func validState(s string) bool {
	for _, x := range jobs.AppStates() {
		if string(x) == s {
			return true
		}
	}
	return false
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
