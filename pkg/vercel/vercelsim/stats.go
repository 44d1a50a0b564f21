package vercelsim

import (
	"maps"
	"slices"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// Stats is a snapshot of what a Server has seen and done. Maps are never
// nil; a missing key means zero. Tests assert on it ("one project per
// name", "no 429 after the budget learned"), benchmarks read PerSecond.
type Stats struct {
	// Requests counts requests per endpoint as they arrive.
	Requests map[vercel.Endpoint]int
	// Responses counts answers per endpoint and status code.
	Responses map[vercel.Endpoint]map[int]int
	// Succeeded counts 2xx answers per endpoint.
	Succeeded map[vercel.Endpoint]int
	// RateLimited counts 429 answers per endpoint.
	RateLimited map[vercel.Endpoint]int
	// PaymentRequired counts 402 answers (the daily deployment cap).
	PaymentRequired int
	// Faults counts injected faults per endpoint.
	Faults map[vercel.Endpoint]FaultCounts
	// Abandoned counts requests per endpoint that got no answer: the
	// client left during latency or a hang, or Close dropped them.
	Abandoned map[vercel.Endpoint]int
	// UnknownRoutes counts requests no endpoint matched (answered 404).
	UnknownRoutes int

	// ProjectsCreated counts projects created per name, explicitly or by
	// a deployment; more than one means a name was deleted and reused.
	ProjectsCreated map[string]int
	// StoresCreated counts stores created per name; Vercel allows
	// duplicate names, so more than one means a retry made a duplicate.
	StoresCreated map[string]int
	// DeploymentsCreated counts deployments created per project name.
	DeploymentsCreated map[string]int
	// DeploymentsReady counts deployments per project name that were
	// READY at the time of the snapshot (or when deleted).
	DeploymentsReady map[string]int
	// DeploymentsFailed counts deployments per project name that ended in
	// ERROR by the time of the snapshot (or when deleted).
	DeploymentsFailed map[string]int

	// Uploads counts accepted uploads, including those of files the
	// Server already had; UploadBytes sums their sizes.
	Uploads     int
	UploadBytes int64
	// UniqueFiles counts distinct files (by SHA-1) stored.
	UniqueFiles int

	// TransfersAccepted counts accepted transfer requests (claims).
	TransfersAccepted int
	// CallbacksDelivered counts transfer callbacks answered 2xx;
	// CallbacksFailed those that failed, were refused or went unsent
	// (an address not on loopback).
	CallbacksDelivered, CallbacksFailed int

	// PerSecond is, per endpoint, the number of 2xx answers in each
	// second (by the Server's clock) that had any, in time order.
	PerSecond map[vercel.Endpoint][]SecondCount
}

// FaultCounts counts the injected faults of one endpoint by kind.
type FaultCounts struct {
	ErrorBefore int
	ErrorAfter  int
	Hang        int
	HangAfter   int
}

// SecondCount is the number of successful answers in the second starting at
// Second.
type SecondCount struct {
	Second time.Time
	Count  int
}

// counters is the mutable side of Stats; the Server's mutex guards it.
type counters struct {
	requests      map[vercel.Endpoint]int
	responses     map[vercel.Endpoint]map[int]int
	succeeded     map[vercel.Endpoint]int
	rateLimited   map[vercel.Endpoint]int
	paymentReq    int
	faults        map[vercel.Endpoint]FaultCounts
	abandoned     map[vercel.Endpoint]int
	unknownRoutes int

	projectsCreated    map[string]int
	storesCreated      map[string]int
	deploymentsCreated map[string]int

	uploads     int
	uploadBytes int64

	transfersAccepted  int
	callbacksDelivered int
	callbacksFailed    int

	// perSecond keys successes by Unix second: one map entry per busy
	// second keeps it cheap at any request rate.
	perSecond map[vercel.Endpoint]map[int64]int
}

func newCounters() counters {
	return counters{
		requests:           map[vercel.Endpoint]int{},
		responses:          map[vercel.Endpoint]map[int]int{},
		succeeded:          map[vercel.Endpoint]int{},
		rateLimited:        map[vercel.Endpoint]int{},
		faults:             map[vercel.Endpoint]FaultCounts{},
		abandoned:          map[vercel.Endpoint]int{},
		projectsCreated:    map[string]int{},
		storesCreated:      map[string]int{},
		deploymentsCreated: map[string]int{},
		perSecond:          map[vercel.Endpoint]map[int64]int{},
	}
}

func (c *counters) request(ep vercel.Endpoint) { c.requests[ep]++ }

func (c *counters) response(ep vercel.Endpoint, status int, now time.Time) {
	byStatus := c.responses[ep]
	if byStatus == nil {
		byStatus = map[int]int{}
		c.responses[ep] = byStatus
	}
	byStatus[status]++
	switch {
	case status >= 200 && status < 300:
		c.succeeded[ep]++
		sec := c.perSecond[ep]
		if sec == nil {
			sec = map[int64]int{}
			c.perSecond[ep] = sec
		}
		sec[now.Unix()]++
	case status == 429:
		c.rateLimited[ep]++
	case status == 402:
		c.paymentReq++
	}
}

// Stats returns a snapshot of the Server's counters. Deployment outcomes
// are read from the clock now, like every other view of a deployment.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.stats
	st := Stats{
		Requests:           maps.Clone(c.requests),
		Responses:          make(map[vercel.Endpoint]map[int]int, len(c.responses)),
		Succeeded:          maps.Clone(c.succeeded),
		RateLimited:        maps.Clone(c.rateLimited),
		PaymentRequired:    c.paymentReq,
		Faults:             maps.Clone(c.faults),
		Abandoned:          maps.Clone(c.abandoned),
		UnknownRoutes:      c.unknownRoutes,
		ProjectsCreated:    maps.Clone(c.projectsCreated),
		StoresCreated:      maps.Clone(c.storesCreated),
		DeploymentsCreated: maps.Clone(c.deploymentsCreated),
		DeploymentsReady:   map[string]int{},
		DeploymentsFailed:  map[string]int{},
		Uploads:            c.uploads,
		UploadBytes:        c.uploadBytes,
		UniqueFiles:        len(s.st.files),
		TransfersAccepted:  c.transfersAccepted,
		CallbacksDelivered: c.callbacksDelivered,
		CallbacksFailed:    c.callbacksFailed,
		PerSecond:          make(map[vercel.Endpoint][]SecondCount, len(c.perSecond)),
	}
	for ep, byStatus := range c.responses {
		st.Responses[ep] = maps.Clone(byStatus)
	}
	for ep, secs := range c.perSecond {
		keys := slices.Sorted(maps.Keys(secs))
		series := make([]SecondCount, len(keys))
		for i, k := range keys {
			series[i] = SecondCount{Second: time.Unix(k, 0), Count: secs[k]}
		}
		st.PerSecond[ep] = series
	}
	now := s.now()
	for _, d := range s.st.deployments {
		at := now
		if !d.deletedAt.IsZero() {
			at = d.deletedAt
		}
		switch d.stateAt(at) {
		case stateReady:
			st.DeploymentsReady[d.projectName]++
		case stateError:
			st.DeploymentsFailed[d.projectName]++
		}
	}
	return st
}
