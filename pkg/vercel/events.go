package vercel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
)

// maxEventSize bounds one event of a stream. Events are build log lines,
// which Vercel truncates long before this; the bound only stops a
// misbehaving proxy from growing the decoder's buffer without end, while
// the stream itself may go on for as long as the build does.
const maxEventSize = 1 << 20

// errEventTooLarge is a stream event past maxEventSize.
var errEventTooLarge = errors.New("an event is larger than 1 MiB")

// Types of deployment events (Vercel's enum; the pipeline reads
// EventDeploymentState only).
const (
	EventDelimiter       = "delimiter"
	EventCommand         = "command"
	EventStdout          = "stdout"
	EventStderr          = "stderr"
	EventExit            = "exit"
	EventDeploymentState = "deployment-state"
	EventAliasAssigned   = "alias-assigned"
	EventFatal           = "fatal"
)

// DeploymentEvent is one event of a deployment's build: a log line, a
// command, the build's exit, or a change of the deployment's ready state.
// Vercel sends two shapes, the members inside "payload" or at the top
// level; both read into this.
type DeploymentEvent struct {
	Type         string // one of the Event constants, or another of Vercel's types
	Created      int64  // epoch ms
	DeploymentID string
	ID           string
	Date         int64 // epoch ms
	Serial       string
	Text         string
	Level        string // "error" or "warning", when given
	Info         DeploymentEventInfo
}

// DeploymentEventInfo says where an event comes from; a deployment-state
// event carries the new ReadyState.
type DeploymentEventInfo struct {
	Type       string `json:"type"`
	Name       string `json:"name"`
	Entrypoint string `json:"entrypoint,omitempty"`
	Path       string `json:"path,omitempty"`
	Step       string `json:"step,omitempty"`
	ReadyState string `json:"readyState,omitempty"`
}

// TerminalState is the final ready state a deployment-state event
// announces (StateReady, StateError or StateCanceled), or "" for any other
// event.
func (e DeploymentEvent) TerminalState() string {
	if e.Type == EventAliasAssigned {
		// The deployment's domains point at it: it is READY (Vercel's
		// own client ends its wait on this event).
		return StateReady
	}
	if e.Type != EventDeploymentState {
		return ""
	}
	switch e.Info.ReadyState {
	case StateReady, StateError, StateCanceled:
		return e.Info.ReadyState
	}
	return ""
}

// FollowDeploymentEvents follows a deployment's build events as they
// happen and calls fn with each, in order, until fn returns true, the
// stream ends or ctx ends. A stream that ends (Vercel closes it once the
// deployment is ready or failed) returns nil: whether it said how the
// build ended is for fn to have seen. The answer is read as
// newline-delimited JSON objects; a JSON array, what the endpoint returns
// when it does not stream, is read too.
//
// It is one call to the API: one Limiter wait, one request. The
// per-request timeout bounds only the wait for the answer's headers; the
// stream may then last as long as the build, each silence bounded by the
// stream idle timeout (WithStreamIdleTimeout), the whole by ctx. A broken
// or silent stream is a *NetworkError, an event that is not JSON a
// *DecodeError.
//
// Vercel API: GET /v3/deployments/{idOrUrl}/events?follow=1 (operation
// getDeploymentEvents,
// https://vercel.com/docs/rest-api/deployments/get-deployment-events).
func (c *Client) FollowDeploymentEvents(ctx context.Context, idOrURL string, fn func(DeploymentEvent) (stop bool)) (*Response, error) {
	ep := EndpointDeploymentEvents
	seg, err := segment(ep, "idOrURL", idOrURL)
	if err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, &InvalidArgumentError{Endpoint: ep, Argument: "fn", Reason: "must not be nil"}
	}
	s, resp, err := c.openStream(ctx, request{
		ep: ep, method: http.MethodGet, path: "/v3/deployments/" + seg + "/events",
		query:  url.Values{"follow": {"1"}},
		header: http.Header{"Accept": {"application/stream+json, application/json"}},
	})
	if err != nil {
		return resp, err
	}
	defer s.close()
	if err := decodeEvents(s, fn); err != nil {
		var re *readError
		if errors.As(err, &re) || errors.Is(err, io.ErrUnexpectedEOF) || s.attempt.Err() != nil {
			// The connection broke, mid-event or between events.
			return resp, s.networkError(err)
		}
		return resp, &DecodeError{Endpoint: ep, StatusCode: resp.StatusCode, Err: err}
	}
	return resp, nil
}

// decodeEvents reads events from r one by one, as they arrive, and hands
// each to fn until it returns true or r ends.
func decodeEvents(r io.Reader, fn func(DeploymentEvent) bool) error {
	lim := &eventLimit{r: r, n: maxEventSize}
	br := bufio.NewReader(lim)
	first, err := firstNonSpace(br)
	if err == io.EOF {
		return nil // an empty answer: no events
	}
	if err != nil {
		return err
	}
	dec := json.NewDecoder(br)
	array := first == '['
	if array {
		if _, err := dec.Token(); err != nil {
			return err
		}
	}
	for !array || dec.More() {
		var w *eventWire
		err := dec.Decode(&w)
		if err == io.EOF && !array {
			return nil
		}
		if err != nil {
			return err
		}
		lim.n = maxEventSize // the bound is per event
		if w == nil {
			continue // null: the schema allows it, and it says nothing
		}
		if fn(w.event()) {
			return nil
		}
	}
	_, err = dec.Token() // the closing bracket
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// firstNonSpace peeks at the first byte of the body that is not JSON
// whitespace, leaving it unread.
func firstNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b, br.UnreadByte()
	}
}

// eventLimit fails a read once n bytes were read since the last event.
type eventLimit struct {
	r io.Reader
	n int64
}

func (l *eventLimit) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errEventTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// eventWire reads both shapes of an event: the members in "payload", or
// (the schema's second alternative) at the top level.
type eventWire struct {
	Type    string        `json:"type"`
	Created float64       `json:"created"`
	Payload *eventPayload `json:"payload"`
	// Event is the older shape's type: "state" with the new ready state
	// in payload.value, which Vercel's CLI still reads.
	Event string `json:"event"`
	eventPayload
}

type eventPayload struct {
	DeploymentID string               `json:"deploymentId"`
	ID           string               `json:"id"`
	Date         float64              `json:"date"`
	Serial       flexString           `json:"serial"`
	Text         string               `json:"text"`
	Level        string               `json:"level"`
	Info         *DeploymentEventInfo `json:"info"`
	Value        string               `json:"value"` // the older shape's new ready state
}

func (w *eventWire) event() DeploymentEvent {
	p := &w.eventPayload
	if w.Payload != nil {
		p = w.Payload
	}
	e := DeploymentEvent{
		Type: w.Type, Created: int64(w.Created),
		DeploymentID: p.DeploymentID, ID: p.ID, Date: int64(p.Date),
		Serial: string(p.Serial), Text: p.Text, Level: p.Level,
	}
	if p.Info != nil {
		e.Info = *p.Info
	}
	if e.Type == "" && w.Event == "state" {
		e.Type, e.Info.ReadyState = EventDeploymentState, p.Value
	}
	if e.Level == "" {
		e.Level = w.Level
	}
	return e
}

// flexString reads a string, or a number as its text: the schema says
// string, and a serial is a number in all but type.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n)
	return nil
}
