package vercelsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// Event types the simulated builds emit (Vercel's names).
const (
	eventStdout          = "stdout"
	eventStderr          = "stderr"
	eventDeploymentState = "deployment-state"
)

// stateCanceled is the ready state of a deployment whose project was
// deleted before its build ended: its events end with it.
const stateCanceled = "CANCELED"

// streamClockTick is the longest a stream goes without reading the clock.
// Config.Clock may be a test's fake clock, which moves without telling
// anyone, so a stream cannot just sleep until its next event.
const streamClockTick = 100 * time.Millisecond

// buildEvent is one event of a build at its instant on the build's
// schedule.
type buildEvent struct {
	at    time.Time
	typ   string
	text  string
	state string // the ready state a deployment-state event announces
}

// timeline is every event of d's build, in order: a few log lines while it
// runs, then one deployment-state event with the final ready state. Like
// the build's state it is read off the schedule fixed at creation, so a
// stream, a listing and GET /v13/deployments agree at every instant. A
// deployment deleted before its build ended stops there, CANCELED.
func (d *deployment) timeline() []buildEvent {
	mid := d.buildAt.Add(d.doneAt.Sub(d.buildAt) / 2)
	evs := []buildEvent{
		{at: d.startAt, typ: eventStdout, text: "Running build in Washington, D.C., USA (East) – " + region},
		{at: d.initAt, typ: eventStdout, text: "Downloading 1 deployment files..."},
		{at: d.buildAt, typ: eventStdout, text: `Running "vercel build"`},
		{at: mid, typ: eventStdout, text: "Creating an optimized production build ..."},
	}
	if d.failed {
		msg := d.errorMessage
		if msg == "" {
			msg = `Command "npm run build" exited with 1`
		}
		evs = append(evs,
			buildEvent{at: d.doneAt, typ: eventStderr, text: "Error: " + msg},
			buildEvent{at: d.doneAt, typ: eventDeploymentState, state: stateError})
	} else {
		secs := int(d.doneAt.Sub(d.buildAt).Round(time.Second) / time.Second)
		evs = append(evs,
			buildEvent{at: d.doneAt, typ: eventStdout, text: fmt.Sprintf("Build Completed in /vercel/output [%ds]", secs)},
			buildEvent{at: d.doneAt, typ: eventDeploymentState, state: stateReady})
	}
	if !d.deletedAt.IsZero() && d.deletedAt.Before(d.doneAt) {
		kept := evs[:0]
		for _, e := range evs {
			if !e.at.After(d.deletedAt) {
				kept = append(kept, e)
			}
		}
		evs = append(kept, buildEvent{at: d.deletedAt, typ: eventDeploymentState, state: stateCanceled})
	}
	return evs
}

// eventBody is an event as Vercel sends it: the first shape of the
// schema, with its members inside "payload".
type eventBody struct {
	Type    string      `json:"type"`
	Created int64       `json:"created"`
	Payload eventDetail `json:"payload"`
}

type eventDetail struct {
	DeploymentID string    `json:"deploymentId"`
	ID           string    `json:"id"`
	Date         int64     `json:"date"`
	Serial       string    `json:"serial"`
	Created      int64     `json:"created"`
	Text         string    `json:"text,omitempty"`
	Info         eventInfo `json:"info"`
}

type eventInfo struct {
	Type       string `json:"type"`
	Name       string `json:"name"`
	Entrypoint string `json:"entrypoint"`
	ReadyState string `json:"readyState,omitempty"`
}

// body renders the i-th event of d's timeline. Ids and serials derive from
// the deployment and the position, so every view of one event agrees.
func (d *deployment) eventBody(e buildEvent, i int) eventBody {
	ms := e.at.UnixMilli()
	short := strings.ToLower(strings.TrimPrefix(d.id, "dpl_"))
	if len(short) > 12 {
		short = short[:12]
	}
	return eventBody{
		Type:    e.typ,
		Created: ms,
		Payload: eventDetail{
			DeploymentID: d.id,
			ID:           fmt.Sprintf("evt_%s_%d", short, i),
			Date:         ms,
			Serial:       fmt.Sprintf("%013d%04d", ms, i),
			Created:      ms,
			Text:         e.text,
			Info:         eventInfo{Type: "build", Name: "bld_" + short, Entrypoint: ".", ReadyState: e.state},
		},
	}
}

// getDeploymentEvents answers GET /v3/deployments/{idOrUrl}/events. With
// follow=1 it streams the build's events as they happen, one JSON object
// per line (application/stream+json), and ends the answer after the
// deployment-state event that says how the build ended. Without it, it
// returns the events so far as a JSON array; limit (a positive number, or
// -1 for all, the default) keeps the first ones.
func (s *Server) getDeploymentEvents(c *call) reply {
	q := c.r.URL.Query()
	follow := false
	switch q.Get("follow") {
	case "", "0":
	case "1":
		follow = true
	default:
		return badRequest("Invalid query: `follow` should be equal to one of the allowed values: 0, 1.")
	}
	limit := -1
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n == 0 || n < -1 {
			return badRequest("Invalid query: `limit` should be a positive number or -1.")
		}
		limit = n
	}

	if follow && s.cfg.Quirks.EventStream == StreamNotServed {
		return notFound("The requested path was not found")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.lookupDeployment(c.r.PathValue("idOrUrl"))
	if d == nil {
		return notFound("Deployment not found")
	}
	if follow {
		return reply{status: http.StatusOK, stream: func(ctx context.Context, w http.ResponseWriter, outcome faultOutcome) {
			s.followEvents(ctx, w, d, outcome)
		}}
	}
	now := s.now()
	out := []eventBody{}
	for i, e := range d.timeline() {
		if e.at.After(now) || (limit > 0 && len(out) == limit) {
			break
		}
		out = append(out, d.eventBody(e, i))
	}
	return jsonReply(http.StatusOK, out)
}

// streamFunc writes a streamed body after the headers went out; outcome
// is the fault drawn for the request.
type streamFunc func(ctx context.Context, w http.ResponseWriter, outcome faultOutcome)

// serveStream sends a streamed answer. The faults that strike after the
// handler cannot replace an answer whose headers are gone, so they act on
// the stream: ErrorAfter ends it early (what happened so far, then the
// end of the answer, without the final state), HangAfter makes it go
// silent until the client leaves.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, ep vercel.Endpoint, rep reply, outcome faultOutcome) {
	switch outcome {
	case faultErrorAfter, faultHangAfter:
		s.faulted(ep, outcome)
	}
	s.mu.Lock()
	s.stats.response(ep, rep.status, s.now())
	s.mu.Unlock()
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	h.Set("Content-Type", "application/stream+json; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(rep.status)
	if http.NewResponseController(w).Flush() != nil {
		return
	}
	rep.stream(r.Context(), w, outcome)
}

// followEvents writes d's events as they happen and returns after the
// final one, or when the client leaves. Close drops the connection, as it
// does for hanging requests, so that a server's Shutdown need not wait for
// builds to end.
func (s *Server) followEvents(ctx context.Context, w http.ResponseWriter, d *deployment, outcome faultOutcome) {
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w) // one object per line
	sent := 0
	for {
		s.mu.Lock()
		now := s.now()
		tl := d.timeline()
		s.mu.Unlock()
		var next time.Time
		for sent < len(tl) {
			e := tl[sent]
			if e.at.After(now) {
				next = e.at
				break
			}
			if e.typ == eventDeploymentState && outcome == faultErrorAfter {
				_ = rc.Flush()
				return
			}
			if e.typ == eventDeploymentState && s.cfg.Quirks.EventStream == StreamStaysOpen {
				// Open and silent after the last log line, as if more
				// could come.
				_ = rc.Flush()
				select {
				case <-ctx.Done():
				case <-s.closed:
					panic(http.ErrAbortHandler)
				}
				return
			}
			if enc.Encode(d.eventBody(e, sent)) != nil {
				return
			}
			sent++
			if e.typ == eventDeploymentState {
				_ = rc.Flush()
				return
			}
		}
		if rc.Flush() != nil {
			return
		}
		switch outcome {
		case faultErrorAfter:
			return
		case faultHangAfter:
			select {
			case <-ctx.Done():
			case <-s.closed:
				panic(http.ErrAbortHandler)
			}
			return
		}
		wait := streamClockTick
		if !next.IsZero() {
			wait = min(wait, next.Sub(now))
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.closed:
			t.Stop()
			panic(http.ErrAbortHandler)
		}
	}
}
