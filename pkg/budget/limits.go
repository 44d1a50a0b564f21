package budget

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// Limit is the API's allowance for one endpoint class: Requests per
// Window, and the longer windows of Caps counted at once.
type Limit struct {
	Requests int
	Window   time.Duration
	// Burst is how many calls may go back to back after an idle spell.
	// Defaults to 1: calls are spread evenly, which is what fixed windows
	// on the API's side tolerate best.
	Burst int
	// Caps are the endpoint's longer windows (Vercel counts deployments
	// per 5 minutes, per hour and per day at once). Calls are paced by
	// Requests/Window; a cap holds them back only once it is spent, until
	// enough of its calls have left its window. Each cap's Window is
	// longer than the Limit's.
	Caps []Cap
}

// Cap is one longer window of a Limit: at most Requests calls in any
// Window.
type Cap struct {
	Requests int
	Window   time.Duration
}

func (l Limit) valid() error {
	if l.Requests <= 0 || l.Window <= 0 || l.Burst < 0 {
		return errors.New("needs positive Requests and Window")
	}
	for _, c := range l.Caps {
		if c.Requests <= 0 || c.Window <= l.Window {
			return fmt.Errorf("cap %s needs positive Requests and a Window longer than %s", c, shortDuration(l.Window))
		}
	}
	return nil
}

// String writes the limit as ParseLimits reads it: "120/5m+450/1h+6000/24h".
func (l Limit) String() string {
	var b strings.Builder
	b.WriteString(Cap{l.Requests, l.Window}.String())
	for _, c := range l.Caps {
		b.WriteString("+" + c.String())
	}
	return b.String()
}

func (c Cap) String() string { return strconv.Itoa(c.Requests) + "/" + c.WindowString() }

// WindowString writes the cap's window as limits are written ("5m",
// "24h"), the label of its metrics.
func (c Cap) WindowString() string { return shortDuration(c.Window) }

// shortDuration writes d without the zero units time.Duration.String
// adds: 5m, 1h, 24h, 1h30m, 10s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Plan is a Vercel plan: its published rate limits preset every
// endpoint (BUDGET_PLAN).
type Plan string

// The plans whose limits Vercel publishes.
const (
	PlanHobby      Plan = "hobby"
	PlanPro        Plan = "pro"
	PlanEnterprise Plan = "enterprise"
)

// Plans lists the plans in the order of their limits.
func Plans() []Plan { return []Plan{PlanHobby, PlanPro, PlanEnterprise} }

// ParsePlan reads a plan's name; "free" is Hobby's other name.
func ParsePlan(s string) (Plan, error) {
	switch p := Plan(strings.ToLower(strings.TrimSpace(s))); p {
	case PlanHobby, "free":
		return PlanHobby, nil
	case PlanPro, PlanEnterprise:
		return p, nil
	}
	return "", fmt.Errorf("budget plan %q: want hobby, pro or enterprise", s)
}

// DefaultLimits are the limits assumed when none are configured: the Pro
// plan's (PlanLimits). A team on Hobby that keeps them hears 402s once
// its 100 daily deployments are spent, and the budget pauses deployment
// creation then; a team on Enterprise that keeps them spends a quarter of
// its allowance. BUDGET_PLAN says which plan the team is on.
func DefaultLimits() map[vercel.Endpoint]Limit { return PlanLimits(PlanPro) }

// PlanLimits returns the limits of every endpoint the pipeline calls on
// plan p. The numbers Vercel publishes (its limits page, read 2026-12;
// docs/OPERATIONS.md cites it) are used as published: deployments per 5
// minutes, per hour and per day; file uploads per day; integration store
// creation and deletion per minute; store connections and integration
// authorizations per hour. Vercel publishes no numbers for the other
// endpoints, nor a per-minute pace for those it counts only per hour or
// day: there the limits are conservative guesses (60 writes and 300
// reads a minute) that the budget corrects as soon as an answer reports
// X-RateLimit-Limit.
func PlanLimits(p Plan) map[vercel.Endpoint]Limit {
	writes := Limit{Requests: 60, Window: time.Minute}
	reads := Limit{Requests: 300, Window: time.Minute}
	perHour := func(n int) Limit {
		return Limit{Requests: writes.Requests, Window: writes.Window, Caps: []Cap{{n, time.Hour}}}
	}
	deployments := map[Plan]Limit{
		PlanHobby:      {Requests: 60, Window: 5 * time.Minute, Caps: []Cap{{100, time.Hour}, {100, 24 * time.Hour}}},
		PlanPro:        {Requests: 120, Window: 5 * time.Minute, Caps: []Cap{{450, time.Hour}, {6000, 24 * time.Hour}}},
		PlanEnterprise: {Requests: 300, Window: 5 * time.Minute, Caps: []Cap{{1800, time.Hour}, {24000, 24 * time.Hour}}},
	}
	uploadsPerDay := map[Plan]int{PlanHobby: 5000, PlanPro: 40000, PlanEnterprise: 80000}
	if _, ok := deployments[p]; !ok {
		p = PlanPro
	}
	return map[vercel.Endpoint]Limit{
		vercel.EndpointCreateProject:    writes,
		vercel.EndpointDeleteProject:    writes,
		vercel.EndpointTransferRequest:  writes,
		vercel.EndpointAcceptTransfer:   writes,
		vercel.EndpointAddDomain:        writes,
		vercel.EndpointGetDomain:        reads,
		vercel.EndpointAuthorize:        perHour(120),
		vercel.EndpointCreateStore:      {Requests: 100, Window: time.Minute},
		vercel.EndpointDeleteStore:      {Requests: 100, Window: time.Minute},
		vercel.EndpointConnectStore:     perHour(120),
		vercel.EndpointCreateDeployment: deployments[p],
		vercel.EndpointUploadFile:       {Requests: reads.Requests, Window: reads.Window, Caps: []Cap{{uploadsPerDay[p], 24 * time.Hour}}},
		vercel.EndpointGetProject:       reads,
		vercel.EndpointListResources:    reads,
		vercel.EndpointListStores:       reads,
		vercel.EndpointGetDeployment:    reads,
		vercel.EndpointDeploymentEvents: reads,
		vercel.EndpointListDeployments:  reads,
	}
}

// ParseLimits reads limits written as "endpoint=N/window" pairs separated
// by commas, e.g. "deployments.create=20/10s,projects.create=100/1m".
// Several windows of one endpoint, all enforced at once, are joined by
// "+": "deployments.create=120/5m+450/1h+6000/24h"; the shortest paces the
// calls and the others are its caps. "all=N/window" sets every endpoint;
// later pairs override earlier ones. An empty string gives nil: no
// overrides.
func ParseLimits(s string) (map[vercel.Endpoint]Limit, error) {
	out := map[vercel.Endpoint]Limit{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, spec, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("budget limit %q: want endpoint=N/window", part)
		}
		l, err := parseLimit(spec)
		if err != nil {
			return nil, fmt.Errorf("budget limit %q: %w", part, err)
		}
		if name == "all" {
			for _, ep := range vercel.Endpoints() {
				out[ep] = l
			}
			continue
		}
		ep := vercel.Endpoint(name)
		if !knownEndpoint(ep) {
			return nil, fmt.Errorf("budget limit %q: unknown endpoint %q (known: %s)", part, name, endpointList())
		}
		out[ep] = l
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// parseLimit reads "N/window" or several joined by "+".
func parseLimit(spec string) (Limit, error) {
	windows, err := parseWindows(spec)
	if err != nil {
		return Limit{}, err
	}
	l := Limit{Requests: windows[0].Requests, Window: windows[0].Window}
	if len(windows) > 1 {
		l.Caps = windows[1:]
	}
	return l, nil
}

// parseWindows reads "N/window" windows joined by "+", shortest first.
func parseWindows(spec string) ([]Cap, error) {
	var out []Cap
	for w := range strings.SplitSeq(spec, "+") {
		c, err := parseWindow(strings.TrimSpace(w))
		if err != nil {
			return nil, err
		}
		for _, o := range out {
			if o.Window == c.Window {
				return nil, fmt.Errorf("window %s given twice", shortDuration(c.Window))
			}
		}
		out = append(out, c)
	}
	slices.SortFunc(out, byWindow)
	return out, nil
}

func byWindow(a, b Cap) int { return cmp.Compare(a.Window, b.Window) }

func parseWindow(w string) (Cap, error) {
	n, win, ok := strings.Cut(w, "/")
	requests, err := strconv.Atoi(n)
	if !ok || err != nil || requests <= 0 {
		return Cap{}, fmt.Errorf("%q: want a positive number of requests, then /window", w)
	}
	if win != "" && (win[0] < '0' || win[0] > '9') {
		win = "1" + win // "5/s" reads as 5 per 1s
	}
	window, err := time.ParseDuration(win)
	if err != nil || window <= 0 {
		return Cap{}, fmt.Errorf("window %q is not a positive duration like 10s, 5m or 24h", win)
	}
	return Cap{Requests: requests, Window: window}, nil
}

// MergeLimits returns base with every limit of over replacing base's.
func MergeLimits(base, over map[vercel.Endpoint]Limit) map[vercel.Endpoint]Limit {
	out := maps.Clone(base)
	if out == nil {
		out = map[vercel.Endpoint]Limit{}
	}
	maps.Copy(out, over)
	return out
}

func knownEndpoint(ep vercel.Endpoint) bool {
	for _, e := range vercel.Endpoints() {
		if e == ep {
			return true
		}
	}
	return false
}

func endpointList() string {
	var names []string
	for _, e := range vercel.Endpoints() {
		names = append(names, string(e))
	}
	return strings.Join(names, ", ")
}
