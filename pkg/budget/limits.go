package budget

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// Limit is the API's allowance for one endpoint class: Requests per Window.
type Limit struct {
	Requests int
	Window   time.Duration
	// Burst is how many calls may go back to back after an idle spell.
	// Defaults to 1: calls are spread evenly, which is what fixed windows
	// on the API's side tolerate best.
	Burst int
}

func (l Limit) valid() bool { return l.Requests > 0 && l.Window > 0 && l.Burst >= 0 }

func (l Limit) String() string { return strconv.Itoa(l.Requests) + "/" + l.Window.String() }

// DefaultLimits are the limits assumed when none are configured. Vercel
// does not publish per-endpoint numbers, so these are deliberately
// conservative; the budget adopts the real limit as soon as the API
// reports it in X-RateLimit-Limit, and BUDGET_LIMITS overrides them.
func DefaultLimits() map[vercel.Endpoint]Limit {
	writes := Limit{Requests: 60, Window: time.Minute}
	reads := Limit{Requests: 300, Window: time.Minute}
	return map[vercel.Endpoint]Limit{
		vercel.EndpointCreateProject:    writes,
		vercel.EndpointDeleteProject:    writes,
		vercel.EndpointTransferRequest:  writes,
		vercel.EndpointAuthorize:        writes,
		vercel.EndpointCreateStore:      writes,
		vercel.EndpointDeleteStore:      writes,
		vercel.EndpointConnectStore:     writes,
		vercel.EndpointCreateDeployment: writes,
		vercel.EndpointUploadFile:       reads,
		vercel.EndpointGetProject:       reads,
		vercel.EndpointListResources:    reads,
		vercel.EndpointGetDeployment:    reads,
		vercel.EndpointDeploymentEvents: reads,
		vercel.EndpointListDeployments:  reads,
	}
}

// ParseLimits reads limits written as "endpoint=N/window" pairs separated
// by commas, e.g. "deployments.create=20/10s,projects.create=100/1m".
// "all=N/window" sets every endpoint; later pairs override earlier ones.
// An empty string gives nil: no overrides.
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
		n, win, ok := strings.Cut(spec, "/")
		requests, err := strconv.Atoi(n)
		if !ok || err != nil || requests <= 0 {
			return nil, fmt.Errorf("budget limit %q: want a positive number of requests, then /window", part)
		}
		if win != "" && (win[0] < '0' || win[0] > '9') {
			win = "1" + win // "5/s" reads as 5 per 1s
		}
		window, err := time.ParseDuration(win)
		if err != nil || window <= 0 {
			return nil, fmt.Errorf("budget limit %q: window %q is not a positive duration like 10s or 1m", part, win)
		}
		l := Limit{Requests: requests, Window: window}
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
