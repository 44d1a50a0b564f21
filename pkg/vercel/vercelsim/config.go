package vercelsim

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// Default values of Config.
const (
	DefaultBuildTime   = 20 * time.Second
	DefaultMaxFileSize = 100 << 20
)

// Limit is a request budget of one endpoint: at most Requests answers per
// Window. Windows are fixed, not sliding: a window opens with the first
// request after the previous one closed and lasts Window, which is what the
// reset time Vercel reports (one instant per window) implies.
type Limit struct {
	Requests int
	Window   time.Duration
	// Caps are further windows of the same endpoint, each counted on its
	// own and all at once (Vercel counts deployments per 5 minutes, per
	// hour and per day): a request is answered 429 when any window is
	// full, and a refused request counts in none.
	Caps []Limit
}

// none reports whether l is the zero Limit: no limit.
func (l Limit) none() bool { return l.Requests == 0 && l.Window == 0 && len(l.Caps) == 0 }

// windows lists l's windows: l itself, then its caps.
func (l Limit) windows() []Limit {
	return append([]Limit{{Requests: l.Requests, Window: l.Window}}, l.Caps...)
}

// Fault injects failures into one endpoint. The four probabilities are of
// disjoint outcomes drawn once per request, so their sum must not exceed 1.
//
// On the streamed answer of deployment events (follow=1), whose headers go
// out before there is anything to replace, the two faults that strike
// after the handler act on the stream instead: ErrorAfter ends it early,
// with the events so far and without the final deployment-state event;
// HangAfter makes it go silent after the events so far, open, until the
// client leaves.
type Fault struct {
	// ErrorBefore is the probability of a 500 or 503 answer given before
	// the handler runs: nothing is created.
	ErrorBefore float64
	// ErrorAfter is the probability that a successful handler's answer is
	// replaced by a 500 or 502: the resource exists, the caller is told it
	// failed. This is what makes retries create duplicates.
	ErrorAfter float64
	// Hang is the probability that the request blocks, before the handler
	// runs, until its context ends (the client gives up) or the Server is
	// closed.
	Hang float64
	// HangAfter is like Hang but after a successful handler ran: the
	// resource exists and its answer is lost.
	HangAfter float64
	// Latency is added to every answer of the endpoint, on top of
	// Config.Latency.
	Latency time.Duration
}

func (f Fault) total() float64 { return f.ErrorBefore + f.ErrorAfter + f.Hang + f.HangAfter }

// Config tunes a Server. The zero value is a usable, fault-free, unlimited
// simulator whose builds take DefaultBuildTime.
type Config struct {
	// BuildTime is how long a deployment takes from the start of its build
	// to READY (or ERROR). A deployment is QUEUED for the first tenth of
	// it, INITIALIZING for the second and BUILDING for the rest. Defaults
	// to DefaultBuildTime; a negative value makes builds finish at once.
	BuildTime time.Duration
	// BuildJitter adds a uniform random [0, BuildJitter) to each build's
	// time, so that builds started together do not finish together.
	// Defaults to 0.
	BuildJitter time.Duration
	// ConcurrentBuilds is how many builds run at once (Vercel: Hobby 1,
	// Pro 12); a deployment waits QUEUED, with isInConcurrentBuildsQueue
	// set, until a build slot is free. Defaults to 0: unlimited.
	ConcurrentBuilds int
	// Latency is added before every answer. Defaults to 0.
	Latency time.Duration
	// LatencyJitter adds a uniform random [0, LatencyJitter) to Latency.
	// Defaults to 0.
	LatencyJitter time.Duration
	// Token, when set, is the only bearer token accepted; another token
	// gets 401. A request without a bearer token gets 401 whatever Token
	// says. Defaults to "": any token is accepted.
	Token string
	// TeamID, when set, is the only team the token may act for: a request
	// whose teamId query parameter is missing or different gets 403,
	// except ClaimTeam's: the end user who claims projects.
	// Defaults to "": any teamId, or none, is accepted.
	TeamID string
	// RateLimits limits endpoints per team (the teamId query parameter),
	// each on its own, in fixed windows. Defaults to none.
	RateLimits map[vercel.Endpoint]Limit
	// DailyDeploymentCap is how many deployments a team may create in 24 h
	// (Vercel Hobby: 100); past it, creating one answers 402 until the
	// window that began with the first deployment ends. Defaults to 0: no
	// cap.
	DailyDeploymentCap int
	// Faults injects failures per endpoint. Defaults to none.
	Faults map[vercel.Endpoint]Fault
	// MaxFileSize is the largest upload accepted by POST /v2/files.
	// Defaults to DefaultMaxFileSize (100 MiB, Vercel Hobby's limit).
	MaxFileSize int64
	// Seed seeds the random source of ids, jitter and faults, so a
	// single-threaded run is reproducible. Defaults to 0: a random seed,
	// reported by Server.Seed.
	Seed int64
	// Clock tells the time. Build progress, rate-limit windows, the daily
	// cap and timestamps all read it, so a test moves a build forward by
	// moving its clock rather than by sleeping. It is called from many
	// goroutines at once. Defaults to time.Now.
	Clock func() time.Time
	// Quirks make the simulator give answers the real API can give that a
	// plain run does not. Defaults to none.
	Quirks Quirks
	// MaxProjects caps the projects of one account (Vercel Hobby: 200);
	// creating one more answers 400 too_many_projects. Defaults to 0: no
	// cap.
	MaxProjects int
	// MaxStores caps the databases of one account (Prisma: 50 on Free,
	// 1 000 on paid plans); creating one more answers 400
	// too_many_stores. Defaults to 0: no cap.
	MaxStores int
	// CallbackClient posts transfer callbacks (to loopback addresses
	// only). Defaults to a client with a 5 s timeout.
	CallbackClient *http.Client
	// ClaimTeam is the account a transfer request is accepted into when
	// the accepting call names no team. Defaults to "team_claimer".
	ClaimTeam string
}

// Quirks are answers Vercel's API can give, each on demand, so that tests
// and benchmarks can check how a client reads them. The zero value gives
// none.
type Quirks struct {
	// EventStream is how a followed deployment event stream
	// (GET /v3/deployments/{id}/events?follow=1) behaves.
	EventStream StreamQuirk
	// AliasDelay is how long after READY a deployment's domains point at
	// it: until then it answers aliasAssigned false and no alias, as
	// Vercel does for a moment after every build. Defaults to 0.
	AliasDelay time.Duration
	// BlockDeployments makes every deployment stay BLOCKED, a readyState
	// Vercel's SDK knows (a deployment its team's settings hold back).
	BlockDeployments bool
	// Authorization is how billing authorizations answer: succeeded at
	// once (the default), or AuthorizationNull, AuthorizationPending,
	// AuthorizationRequiresAction or AuthorizationFailed.
	Authorization AuthorizationQuirk
	// PendingPolls is how many reads a pending authorization stays
	// pending before it succeeds. Defaults to 2.
	PendingPolls int
	// BuildsFull makes creating a deployment while every concurrent
	// build slot (ConcurrentBuilds) is busy answer 429 with code
	// builds_rate_limited, instead of queueing the build.
	BuildsFull bool
	// StoreRouteGone answers 410 to POST /v1/storage/stores/integration,
	// the route of Prisma's guide, which Vercel does not document; the
	// documented …/integration/direct still creates stores.
	StoreRouteGone bool
	// RefuseConnectedStoreDelete answers 400 to deleting a store still
	// connected to a project, as Vercel's CLI refuses to delete one.
	RefuseConnectedStoreDelete bool
	// StoreTransferFails makes accepting a transfer move the project but
	// not its database, which stays in the old team: the accept answers
	// 202 with the store in resourceTransferErrors, as Vercel's can.
	StoreTransferFails bool
	// Forbidden endpoints answer 403 forbidden to every call, while the
	// token works for the others (GET /v1/installations/{cfg}/resources
	// is documented for integration providers and may refuse a team's
	// token). Defaults to none.
	Forbidden []vercel.Endpoint
}

// AuthorizationQuirk is a way a billing authorization can answer.
type AuthorizationQuirk string

// The authorizations' answers.
const (
	// AuthorizationSucceeds answers succeeded at once (also "").
	AuthorizationSucceeds AuthorizationQuirk = "succeeded"
	// AuthorizationNull answers {"authorization":null}.
	AuthorizationNull AuthorizationQuirk = "null"
	// AuthorizationPending answers pending, then succeeded after
	// PendingPolls reads.
	AuthorizationPending AuthorizationQuirk = "pending"
	// AuthorizationRequiresAction answers requires_action: a person must
	// confirm the payment method in a browser.
	AuthorizationRequiresAction AuthorizationQuirk = "requires_action"
	// AuthorizationFailed answers failed.
	AuthorizationFailed AuthorizationQuirk = "failed"
)

// StreamQuirk is a way a deployment's event stream can behave.
type StreamQuirk string

// The event stream's behaviours.
const (
	// StreamEnds sends the build's events, the final deployment-state
	// event, and ends the answer: the plain run's behaviour, also given
	// by "".
	StreamEnds StreamQuirk = "ends"
	// StreamNotServed answers 404, as an API stand-in (a proxy, a mock)
	// that does not serve event streams does.
	StreamNotServed StreamQuirk = "not-served"
	// StreamStaysOpen sends the build's log lines but never the final
	// state and never ends, until the client leaves: the stream is not
	// promised to end at READY.
	StreamStaysOpen StreamQuirk = "stays-open"
)

// Validate reports what is wrong with c, if anything. New panics on an
// invalid Config; a command line calls Validate first to print a usable
// error.
func (c Config) Validate() error {
	var errs []error
	if c.BuildJitter < 0 {
		errs = append(errs, errors.New("negative BuildJitter"))
	}
	if c.ConcurrentBuilds < 0 {
		errs = append(errs, errors.New("negative ConcurrentBuilds"))
	}
	if c.Latency < 0 || c.LatencyJitter < 0 {
		errs = append(errs, errors.New("negative Latency or LatencyJitter"))
	}
	if c.DailyDeploymentCap < 0 {
		errs = append(errs, errors.New("negative DailyDeploymentCap"))
	}
	if c.MaxFileSize < 0 {
		errs = append(errs, errors.New("negative MaxFileSize"))
	}
	for ep, l := range c.RateLimits {
		if !knownEndpoint(ep) {
			errs = append(errs, fmt.Errorf("unknown endpoint %q in RateLimits", ep))
		}
		for _, w := range l.windows() {
			if w.Requests <= 0 || w.Window <= 0 || len(w.Caps) > 0 {
				errs = append(errs, fmt.Errorf("limit of %s: Requests and Window of each window must be positive, and caps have no caps", ep))
				break
			}
		}
	}
	for _, ep := range c.Quirks.Forbidden {
		if !knownEndpoint(ep) {
			errs = append(errs, fmt.Errorf("unknown endpoint %q in Quirks.Forbidden", ep))
		}
	}
	if c.Quirks.AliasDelay < 0 {
		errs = append(errs, errors.New("negative AliasDelay"))
	}
	switch c.Quirks.Authorization {
	case "", AuthorizationSucceeds, AuthorizationNull, AuthorizationPending, AuthorizationRequiresAction, AuthorizationFailed:
	default:
		errs = append(errs, fmt.Errorf("unknown Authorization quirk %q", c.Quirks.Authorization))
	}
	if c.Quirks.PendingPolls < 0 {
		errs = append(errs, errors.New("negative PendingPolls"))
	}
	switch c.Quirks.EventStream {
	case "", StreamEnds, StreamNotServed, StreamStaysOpen:
	default:
		errs = append(errs, fmt.Errorf("unknown EventStream quirk %q", c.Quirks.EventStream))
	}
	for ep, f := range c.Faults {
		if !knownEndpoint(ep) {
			errs = append(errs, fmt.Errorf("unknown endpoint %q in Faults", ep))
		}
		if err := f.validate(); err != nil {
			errs = append(errs, fmt.Errorf("fault of %s: %w", ep, err))
		}
	}
	return errors.Join(errs...)
}

func (f Fault) validate() error {
	for _, p := range []float64{f.ErrorBefore, f.ErrorAfter, f.Hang, f.HangAfter} {
		if p < 0 || p > 1 || p != p {
			return errors.New("probabilities must be within [0, 1]")
		}
	}
	if f.total() > 1 {
		return errors.New("probabilities sum to more than 1")
	}
	if f.Latency < 0 {
		return errors.New("negative Latency")
	}
	return nil
}

func knownEndpoint(ep vercel.Endpoint) bool {
	for _, e := range vercel.Endpoints() {
		if e == ep {
			return true
		}
	}
	return false
}

// withDefaults returns a copy of c with defaults applied and maps copied, so
// a caller changing its maps later does not race with the Server.
func (c Config) withDefaults() Config {
	if c.BuildTime == 0 {
		c.BuildTime = DefaultBuildTime
	}
	if c.CallbackClient == nil {
		c.CallbackClient = &http.Client{Timeout: 5 * time.Second}
	}
	if c.ClaimTeam == "" {
		c.ClaimTeam = "team_claimer"
	}
	if c.BuildTime < 0 {
		c.BuildTime = 0
	}
	if c.MaxFileSize == 0 {
		c.MaxFileSize = DefaultMaxFileSize
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	c.RateLimits = maps.Clone(c.RateLimits)
	if c.RateLimits == nil {
		c.RateLimits = map[vercel.Endpoint]Limit{}
	}
	c.Quirks.Forbidden = slices.Clone(c.Quirks.Forbidden)
	if c.Quirks.PendingPolls == 0 {
		c.Quirks.PendingPolls = 2
	}
	c.Faults = maps.Clone(c.Faults)
	if c.Faults == nil {
		c.Faults = map[vercel.Endpoint]Fault{}
	}
	return c
}
