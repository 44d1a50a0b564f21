package vercel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// collect follows the events of dpl_1 and returns them with the result.
func collect(t *testing.T, b *bundle, stopAfter int) ([]DeploymentEvent, *Response, error) {
	t.Helper()
	var evs []DeploymentEvent
	resp, err := b.client.FollowDeploymentEvents(t.Context(), "dpl_1", func(e DeploymentEvent) bool {
		evs = append(evs, e)
		return stopAfter > 0 && len(evs) == stopAfter
	})
	return evs, resp, err
}

func TestFollowDeploymentEventsRequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("GET /v3/deployments/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		if got, want := r.URL.EscapedPath(), "/v3/deployments/my%2Fapp.vercel.app/events"; got != want {
			t.Errorf("path = %s, want %s", got, want)
		}
		if got, want := r.URL.Query(), (url.Values{"teamId": {testTeam}, "follow": {"1"}}); !reflect.DeepEqual(got, want) {
			t.Errorf("query = %v, want %v", got, want)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
			t.Errorf("Authorization = %q", got)
		}
		if got := r.Header.Get("Accept"); !strings.Contains(got, "application/stream+json") {
			t.Errorf("Accept = %q, want application/stream+json among them", got)
		}
		w.Header().Set("Content-Type", "application/stream+json")
	})
	n := 0
	resp, err := b.client.FollowDeploymentEvents(t.Context(), "my/app.vercel.app", func(DeploymentEvent) bool { n++; return false })
	if err != nil || n != 0 || resp == nil || resp.StatusCode != 200 {
		t.Fatalf("empty stream: %d events, %+v, %v", n, resp, err)
	}
	if _, err := b.client.FollowDeploymentEvents(t.Context(), "..", func(DeploymentEvent) bool { return false }); err == nil {
		t.Error("a dot segment was sent")
	}
	var ia *InvalidArgumentError
	if _, err := b.client.FollowDeploymentEvents(t.Context(), "dpl_1", nil); !errors.As(err, &ia) {
		t.Errorf("nil fn: %v", err)
	}
}

// Both shapes of the schema, in a stream and in a JSON array; serials may
// come as numbers.
func TestFollowDeploymentEventsShapes(t *testing.T) {
	t.Parallel()
	const nested = `{"type":"stdout","created":1000,"payload":{"deploymentId":"dpl_1","id":"e1","date":1001,"serial":"s1","text":"hello","info":{"type":"build","name":"bld_1"}}}`
	const flat = `{"type":"deployment-state","created":2000,"date":2001,"deploymentId":"dpl_1","id":"e2","serial":12,"level":"warning","info":{"type":"build","name":"bld_1","readyState":"READY"}}`
	want := []DeploymentEvent{
		{Type: EventStdout, Created: 1000, DeploymentID: "dpl_1", ID: "e1", Date: 1001, Serial: "s1", Text: "hello", Info: DeploymentEventInfo{Type: "build", Name: "bld_1"}},
		{Type: EventDeploymentState, Created: 2000, DeploymentID: "dpl_1", ID: "e2", Date: 2001, Serial: "12", Level: "warning", Info: DeploymentEventInfo{Type: "build", Name: "bld_1", ReadyState: StateReady}},
	}
	for name, body := range map[string]string{
		"ndjson":          nested + "\n" + flat + "\n",
		"ndjson no final": "\n" + nested + "\r\n\n" + flat,
		"array":           " [" + nested + ",\n" + flat + "]",
		"array with null": "[null," + nested + "," + flat + "]",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.mux.HandleFunc("GET /v3/deployments/dpl_1/events", func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, body)
			})
			got, _, err := collect(t, b, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("events = %+v\nwant %+v", got, want)
			}
			if got[1].TerminalState() != StateReady || got[0].TerminalState() != "" {
				t.Errorf("TerminalState: %q, %q", got[0].TerminalState(), got[1].TerminalState())
			}
		})
	}
}

// The older shape Vercel's CLI still reads, {"event":"state",
// "payload":{"value":"READY"}}, announces the final state too.
func TestFollowDeploymentEventsOlderStateShape(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("GET /v3/deployments/dpl_1/events", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"type":"stdout","payload":{"text":"building"}}`+"\n"+`{"event":"state","date":3000,"payload":{"value":"READY"}}`+"\n")
	})
	got, _, err := collect(t, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].TerminalState() != "" || got[1].TerminalState() != StateReady {
		t.Fatalf("events = %+v; want the second to announce READY", got)
	}
	// alias-assigned, which Vercel's client ends its wait on, says READY.
	if (DeploymentEvent{Type: EventAliasAssigned}).TerminalState() != StateReady {
		t.Fatal("alias-assigned does not announce READY")
	}
}

// fn stopping ends the call at once, without reading the rest: the stream
// may not end for minutes.
func TestFollowDeploymentEventsStopsWhenTold(t *testing.T) {
	t.Parallel()
	b := setup(t)
	left := make(chan struct{})
	b.mux.HandleFunc("GET /v3/deployments/dpl_1/events", func(w http.ResponseWriter, r *http.Request) {
		for i := range 2 {
			fmt.Fprintf(w, `{"type":"stdout","created":%d,"payload":{"deploymentId":"dpl_1","id":"e%d","date":1,"serial":"1"}}`+"\n", i, i)
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			close(left)
		case <-b.done:
		}
	})
	evs, _, err := collect(t, b, 2)
	if err != nil || len(evs) != 2 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	select {
	case <-left:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection stayed open after fn said stop")
	}
}

func TestFollowDeploymentEventsBadAnswers(t *testing.T) {
	t.Parallel()
	huge := `{"type":"stdout","created":1,"payload":{"text":"` + strings.Repeat("x", maxEventSize+10) + `"}}`
	for _, tt := range []struct {
		name   string
		body   string
		broken bool // the connection drops mid-answer
		check  func(t *testing.T, err error)
	}{
		{name: "not JSON", body: "{\"type\":\"stdout\"}\nnot json\n", check: func(t *testing.T, err error) {
			var de *DecodeError
			if !errors.As(err, &de) || de.Endpoint != EndpointDeploymentEvents {
				t.Errorf("err = %v, want a *DecodeError", err)
			}
		}},
		{name: "event too large", body: huge, check: func(t *testing.T, err error) {
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, errEventTooLarge) {
				t.Errorf("err = %v, want a *DecodeError for the size", err)
			}
		}},
		{name: "array element not an object", body: `[1]`, check: func(t *testing.T, err error) {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Errorf("err = %v, want a *DecodeError", err)
			}
		}},
		{name: "unterminated array", body: `[{"type":"stdout"}`, check: func(t *testing.T, err error) {
			var ne *NetworkError
			if !errors.As(err, &ne) || Classify(err).Class != Transient {
				t.Errorf("err = %v, want a transient *NetworkError", err)
			}
		}},
		{name: "broken mid-event", body: `{"type":"stdout","payl`, broken: true, check: func(t *testing.T, err error) {
			var ne *NetworkError
			if !errors.As(err, &ne) || Classify(err).Reason != ReasonNetwork {
				t.Errorf("err = %v, want a *NetworkError of reason network", err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.mux.HandleFunc("GET /v3/deployments/dpl_1/events", func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, tt.body)
				if tt.broken {
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler)
				}
			})
			_, _, err := collect(t, b, 0)
			tt.check(t, err)
		})
	}
}

// An error answer goes through the common path: typed, and without the
// token a proxy may have echoed.
func TestFollowDeploymentEventsErrorAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("GET /v3/deployments/dpl_1/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Vercel-Id", "req-7")
		writeJSON(w, http.StatusBadGateway, `{"error":{"code":"bad_gateway","message":"upstream said `+r.Header.Get("Authorization")+`"}}`)
	})
	_, resp, err := collect(t, b, 0)
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 502 || ae.RequestID != "req-7" || resp == nil {
		t.Fatalf("err = %v, want a 502 *APIError", err)
	}
	if strings.Contains(err.Error(), testToken) || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("error message %q: the token must be redacted", err)
	}
	if Classify(err).Class != Transient {
		t.Errorf("a 502 is not transient: %+v", Classify(err))
	}
}

// The per-request timeout bounds the wait for the headers only, and says
// so in the error.
func TestFollowDeploymentEventsHeaderTimeout(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	b := setup(t, WithRequestTimeout(200*time.Millisecond), WithStreamIdleTimeout(time.Minute), WithLimiter(rec), WithRequestObserver(rec))
	b.mux.HandleFunc("GET /v3/deployments/dpl_1/events", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-b.done:
		}
	})
	_, _, err := collect(t, b, 0)
	var ne *NetworkError
	if !errors.As(err, &ne) || ne.RequestTimeout != 200*time.Millisecond || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a *NetworkError naming the 200ms request timeout", err)
	}
	if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "teamId") {
		t.Errorf("error shows the token or the query: %v", err)
	}
	events, obs, reqs := rec.snapshot()
	if len(obs) != 1 || obs[0].status != 0 || len(reqs) != 1 || reqs[0].status != 0 {
		t.Errorf("events %v: want one wait, one request without answer, one observation", events)
	}
}
