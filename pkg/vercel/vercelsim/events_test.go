package vercelsim_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// eventLines follows a deployment's events over HTTP and hands out one
// decoded line at a time.
type eventLines struct {
	res   *http.Response
	lines chan map[string]any
}

func (b *bundle) followEvents(t *testing.T, ctx context.Context, id string) *eventLines {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", b.srv.URL+"/v3/deployments/"+id+"/events?follow=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	el := &eventLines{res: res, lines: make(chan map[string]any, 16)}
	go func() {
		defer close(el.lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				return
			}
			el.lines <- ev
		}
	}()
	return el
}

// next returns the next event, or nil when the stream ended.
func (el *eventLines) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case ev := <-el.lines:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event and no end within 10 s")
	}
	return nil
}

func readyStateOf(ev map[string]any) string {
	p, _ := ev["payload"].(map[string]any)
	info, _ := p["info"].(map[string]any)
	s, _ := info["readyState"].(string)
	return s
}

// The stream moves with the simulator's clock: log lines while the build
// runs, the final state when it ends, then the end of the answer.
func TestEventStreamFollowsTheBuild(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{BuildTime: 100 * time.Second})
	id := b.deploy(t, "events", source("x"))
	el := b.followEvents(t, t.Context(), id)

	if ev := el.next(t); ev["type"] != "stdout" {
		t.Fatalf("first event %v, want the build's first line", ev)
	}
	b.clock.Advance(20 * time.Second) // initializing, then building
	for _, want := range []string{"stdout", "stdout"} {
		if ev := el.next(t); ev == nil || ev["type"] != want || readyStateOf(ev) != "" {
			t.Fatalf("event %v, want %s", ev, want)
		}
	}
	b.clock.Advance(80 * time.Second)
	var last map[string]any
	for ev := el.next(t); ev != nil; ev = el.next(t) {
		last = ev
	}
	if last["type"] != "deployment-state" || readyStateOf(last) != "READY" {
		t.Fatalf("last event %v, want deployment-state READY", last)
	}
	st := b.sim.Stats()
	if st.Requests[vercel.EndpointDeploymentEvents] != 1 || st.Responses[vercel.EndpointDeploymentEvents][200] != 1 {
		t.Errorf("stats: %d requests, answers %v", st.Requests[vercel.EndpointDeploymentEvents], st.Responses[vercel.EndpointDeploymentEvents])
	}
}

// A deployment deleted with its project mid-build ends CANCELED.
func TestEventStreamCanceledByDeletion(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{BuildTime: 100 * time.Second})
	id := b.deploy(t, "events-del", source("x"))
	el := b.followEvents(t, t.Context(), id)
	el.next(t)
	b.clock.Advance(30 * time.Second)
	want(t, b.do(t, "DELETE", "/v9/projects/events-del", nil), 204)
	var last map[string]any
	for ev := el.next(t); ev != nil; ev = el.next(t) {
		last = ev
	}
	if last["type"] != "deployment-state" || readyStateOf(last) != "CANCELED" {
		t.Fatalf("last event %v, want deployment-state CANCELED", last)
	}
}

// HangAfter leaves the stream open and silent; the client leaving ends it,
// and Close drops those still open.
func TestEventStreamHangAfter(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{BuildTime: 10 * time.Second, Faults: map[vercel.Endpoint]vercelsim.Fault{
		vercel.EndpointDeploymentEvents: {HangAfter: 1},
	}})
	id := b.deploy(t, "events-hang", source("x"))
	el := b.followEvents(t, t.Context(), id)
	el.next(t)
	b.clock.Advance(time.Minute) // the build ends; the stream says nothing more
	select {
	case ev := <-el.lines:
		t.Fatalf("a silenced stream sent %v", ev)
	case <-time.After(3 * 100 * time.Millisecond): // three ticks of the stream's clock reading
	}
	b.sim.Close()
	if ev := el.next(t); ev != nil {
		t.Fatalf("after Close: %v", ev)
	}
	if got := b.sim.Stats().Faults[vercel.EndpointDeploymentEvents].HangAfter; got != 1 {
		t.Errorf("HangAfter faults = %d", got)
	}
}

// The quirks: a stream that is not served, and one that stays open after
// the build without its final state.
func TestEventStreamQuirks(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{BuildTime: 10 * time.Second, Quirks: vercelsim.Quirks{EventStream: vercelsim.StreamNotServed}})
	id := b.deploy(t, "events-404", source("x"))
	want(t, b.do(t, "GET", "/v3/deployments/"+id+"/events?follow=1", nil), 404)

	b = setup(t, vercelsim.Config{BuildTime: 10 * time.Second, Quirks: vercelsim.Quirks{EventStream: vercelsim.StreamStaysOpen}})
	id = b.deploy(t, "events-open", source("x"))
	el := b.followEvents(t, t.Context(), id)
	el.next(t)
	b.clock.Advance(time.Minute) // the build ends
	// Up to the build's last line: the final state would come in the same
	// write, so whatever was sent is in the stream once Close drops it.
	for ev := el.next(t); ; ev = el.next(t) {
		if ev == nil {
			t.Fatal("the stream ended by itself; it should stay open")
		}
		if readyStateOf(ev) != "" {
			t.Fatalf("the stream announced the final state: %v", ev)
		}
		if p, _ := ev["payload"].(map[string]any); strings.HasPrefix(fmt.Sprint(p["text"]), "Build Completed") {
			break
		}
	}
	b.sim.Close()
	for ev := el.next(t); ev != nil; ev = el.next(t) {
		if readyStateOf(ev) != "" {
			t.Fatalf("the stream announced the final state: %v", ev)
		}
	}
}

// Without follow the answer is the events so far, as a JSON array.
func TestEventListSoFar(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{BuildTime: 100 * time.Second})
	id := b.deploy(t, "events-list", source("x"))
	count := func() []map[string]any {
		r := b.do(t, "GET", "/v3/deployments/"+id+"/events", nil)
		want(t, r, 200)
		var evs []map[string]any
		if err := json.Unmarshal(r.body, &evs); err != nil {
			t.Fatalf("%s: %v", r.body, err)
		}
		return evs
	}
	if n := len(count()); n != 1 {
		t.Errorf("%d events at creation, want 1", n)
	}
	b.clock.Advance(100 * time.Second)
	evs := count()
	if len(evs) != 6 || readyStateOf(evs[5]) != "READY" {
		t.Errorf("events after the build: %v", evs)
	}
	want(t, b.do(t, "GET", "/v3/deployments/"+id+"/events?limit=0", nil), 400)
}
