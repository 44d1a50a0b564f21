package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// allEndpoints names every endpoint in --limit and --fault.
const allEndpoints = "all"

// options is the command line, parsed.
type options struct {
	addr        string
	allowRemote bool
	logRequests bool
	sim         vercelsim.Config
}

// parseFlags reads the command line; getenv supplies the token's fallback,
// VERCELSIM_TOKEN, so that it need not show in the process list.
func parseFlags(args []string, getenv func(string) string) (options, error) {
	var o options
	fs := flag.NewFlagSet("vercelsim", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: vercelsim [flags]\n\nServes a simulated Vercel REST API. Flags:\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nEndpoints for --limit and --fault: %s, or %q for every one.\n", endpointList(), allEndpoints)
	}
	cfg := &o.sim
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8787", "`host:port` to listen on; port 0 picks a free one")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow listening on a non-loopback address")
	fs.BoolVar(&o.logRequests, "log-requests", false, "log every request to stderr")
	fs.DurationVar(&cfg.BuildTime, "build-time", vercelsim.DefaultBuildTime, "time from deployment creation to READY; 0 for instant builds")
	fs.DurationVar(&cfg.BuildJitter, "build-jitter", 0, "random extra build time, up to this")
	fs.IntVar(&cfg.ConcurrentBuilds, "concurrent-builds", 0, "builds running at once; others wait QUEUED (0: unlimited)")
	fs.DurationVar(&cfg.Latency, "latency", 0, "delay before every answer")
	fs.DurationVar(&cfg.LatencyJitter, "latency-jitter", 0, "random extra delay, up to this")
	fs.StringVar(&cfg.Token, "token", "", "the only bearer token accepted (default $VERCELSIM_TOKEN; empty: any)")
	fs.StringVar(&cfg.TeamID, "team-id", "", "the only teamId accepted (empty: any)")
	fs.IntVar(&cfg.DailyDeploymentCap, "daily-cap", 0, "deployments per team per 24 h before 402 (0: no cap)")
	fs.Int64Var(&cfg.MaxFileSize, "max-file-size", vercelsim.DefaultMaxFileSize, "largest upload in bytes")
	fs.Int64Var(&cfg.Seed, "seed", 0, "random seed (0: random, printed at start)")
	fs.DurationVar(&cfg.Quirks.AliasDelay, "alias-delay", 0, "how long after READY a deployment's domains are assigned (aliasAssigned)")
	fs.BoolVar(&cfg.Quirks.BlockDeployments, "block-deployments", false, "every deployment stays BLOCKED")
	fs.BoolVar(&cfg.Quirks.StoreRouteGone, "store-route-gone", false, "answer 410 to the Prisma guide's store route; the documented …/integration/direct still works")
	fs.BoolVar(&cfg.Quirks.BuildsFull, "builds-full", false, "with --concurrent-builds all busy, creating a deployment answers 429 builds_rate_limited instead of queueing")
	fs.BoolVar(&cfg.Quirks.RefuseConnectedStoreDelete, "refuse-connected-store-delete", false, "answer 400 to deleting a store still connected to a project")
	fs.BoolVar(&cfg.Quirks.StoreTransferFails, "store-transfer-fails", false, "an accepted transfer moves the project but not its database")
	fs.IntVar(&cfg.MaxProjects, "max-projects", 0, "projects per team (Vercel Hobby: 200); past it 400 too_many_projects; 0: no cap")
	fs.IntVar(&cfg.MaxStores, "max-stores", 0, "databases per team (Prisma Free: 50); past it 400 too_many_stores; 0: no cap")
	fs.StringVar((*string)(&cfg.Quirks.Authorization), "authorization", "", "how billing authorizations answer: succeeded (default), null, pending, requires_action or failed")
	fs.StringVar((*string)(&cfg.Quirks.EventStream), "event-stream", "", "how followed event streams behave: ends (default), not-served (404) or stays-open (no final state, never ends)")
	fs.Func("limit", "rate limit `endpoint=N/window`, e.g. deployments.create=5/1s (repeatable)", func(v string) error {
		eps, lim, err := parseLimit(v)
		if err != nil {
			return err
		}
		if cfg.RateLimits == nil {
			cfg.RateLimits = map[vercel.Endpoint]vercelsim.Limit{}
		}
		for _, ep := range eps {
			cfg.RateLimits[ep] = lim
		}
		return nil
	})
	fs.Func("fault", "faults `endpoint=kind:value,...`; kinds before, after, hang, hang-after (probabilities) and latency (a duration), e.g. stores.create=after:0.1 (repeatable)", func(v string) error {
		eps, f, err := parseFault(v)
		if err != nil {
			return err
		}
		if cfg.Faults == nil {
			cfg.Faults = map[vercel.Endpoint]vercelsim.Fault{}
		}
		for _, ep := range eps {
			cfg.Faults[ep] = f
		}
		return nil
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, &usageErr{err: err, reported: true}
	}
	if fs.NArg() > 0 {
		return o, usageError(fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	if cfg.Token == "" {
		cfg.Token = getenv("VERCELSIM_TOKEN")
	}
	if cfg.BuildTime == 0 {
		cfg.BuildTime = -1 // Config reads 0 as "default"; on the command line 0 means instant
	}
	if err := cfg.Validate(); err != nil {
		return o, usageError(err)
	}
	return o, nil
}

func endpointList() string {
	var names []string
	for _, ep := range vercel.Endpoints() {
		names = append(names, string(ep))
	}
	return strings.Join(names, ", ")
}

// endpoints resolves the left side of --limit and --fault.
func endpoints(name string) ([]vercel.Endpoint, error) {
	if name == allEndpoints {
		return vercel.Endpoints(), nil
	}
	for _, ep := range vercel.Endpoints() {
		if string(ep) == name {
			return []vercel.Endpoint{ep}, nil
		}
	}
	return nil, fmt.Errorf("unknown endpoint %q (want one of %s, or %s)", name, endpointList(), allEndpoints)
}

// parseLimit reads endpoint=N/window, or several windows of one endpoint
// joined by "+" (deployments.create=120/5m+450/1h), all counted at once.
// A window may leave out a leading 1 ("5/s", "100/m") and take a minute
// as "m" or "min".
func parseLimit(v string) ([]vercel.Endpoint, vercelsim.Limit, error) {
	name, spec, ok := strings.Cut(v, "=")
	if !ok {
		return nil, vercelsim.Limit{}, fmt.Errorf("limit %q: want endpoint=N/window", v)
	}
	eps, err := endpoints(name)
	if err != nil {
		return nil, vercelsim.Limit{}, err
	}
	var windows []vercelsim.Limit
	for w := range strings.SplitSeq(spec, "+") {
		lw, err := parseWindow(v, w)
		if err != nil {
			return nil, vercelsim.Limit{}, err
		}
		windows = append(windows, lw)
	}
	slices.SortFunc(windows, func(a, b vercelsim.Limit) int { return cmp.Compare(a.Window, b.Window) })
	lim := windows[0]
	lim.Caps = windows[1:]
	if len(lim.Caps) == 0 {
		lim.Caps = nil
	}
	return eps, lim, nil
}

// parseWindow reads one N/window of the limit v.
func parseWindow(v, w string) (vercelsim.Limit, error) {
	n, window, ok := strings.Cut(w, "/")
	if !ok {
		return vercelsim.Limit{}, fmt.Errorf("limit %q: want endpoint=N/window", v)
	}
	requests, err := strconv.Atoi(n)
	if err != nil || requests <= 0 {
		return vercelsim.Limit{}, fmt.Errorf("limit %q: %q is not a positive number of requests", v, n)
	}
	if window == "min" {
		window = "m"
	}
	if window != "" && (window[0] < '0' || window[0] > '9') {
		window = "1" + window
	}
	d, err := time.ParseDuration(window)
	if err != nil || d <= 0 {
		return vercelsim.Limit{}, fmt.Errorf("limit %q: %q is not a positive duration", v, window)
	}
	return vercelsim.Limit{Requests: requests, Window: d}, nil
}

// parseFault reads endpoint=kind:value,...
func parseFault(v string) ([]vercel.Endpoint, vercelsim.Fault, error) {
	var f vercelsim.Fault
	name, spec, ok := strings.Cut(v, "=")
	if !ok || spec == "" {
		return nil, f, fmt.Errorf("fault %q: want endpoint=kind:value[,kind:value]", v)
	}
	eps, err := endpoints(name)
	if err != nil {
		return nil, f, err
	}
	for part := range strings.SplitSeq(spec, ",") {
		kind, val, ok := strings.Cut(part, ":")
		if !ok {
			return nil, f, fmt.Errorf("fault %q: %q is not kind:value", v, part)
		}
		if kind == "latency" {
			if f.Latency, err = time.ParseDuration(val); err != nil {
				return nil, f, fmt.Errorf("fault %q: %w", v, err)
			}
			continue
		}
		p, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, f, fmt.Errorf("fault %q: %q is not a probability", v, val)
		}
		switch kind {
		case "before":
			f.ErrorBefore = p
		case "after":
			f.ErrorAfter = p
		case "hang":
			f.Hang = p
		case "hang-after":
			f.HangAfter = p
		default:
			return nil, f, fmt.Errorf("fault %q: unknown kind %q (want before, after, hang, hang-after or latency)", v, kind)
		}
	}
	return eps, f, nil
}

var errRemote = errors.New("refusing a non-loopback address without --allow-remote: the simulator accepts any token by default and is for tests")

// checkLoopback refuses an address that is not loopback: an empty host
// means every interface, a name must resolve to loopback addresses only.
func checkLoopback(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return errRemote
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return errRemote
		}
		return nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return errRemote
		}
	}
	return nil
}

// exitCode is the process's status for err: 2 for a bad command line.
func exitCode(err error) int {
	var ue *usageErr
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

// usageErr marks an error as the command line's fault. reported says the
// flag package already printed it, with the usage.
type usageErr struct {
	err      error
	reported bool
}

func (e *usageErr) Error() string { return e.err.Error() }
func (e *usageErr) Unwrap() error { return e.err }

func usageError(err error) error { return &usageErr{err: err} }

// reported tells whether err was already shown to the user.
func reported(err error) bool {
	var ue *usageErr
	return errors.As(err, &ue) && ue.reported
}
