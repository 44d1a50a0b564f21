package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
)

// tracked is one request of a batch, from plan to terminal event.
type tracked struct {
	*plan
	state trackState
	sub   *jobs.Submitted
	steps int    // pipeline steps completed
	step  string // the last of them
	end   *jobs.Event
	// endRaw is the terminal event as received, printed as is by --json.
	endRaw []byte
	// early holds events that came before the submit was confirmed (a
	// duplicate's history is replayed at once), so that the output shows
	// the submit first.
	early []received
}

type trackState int

const (
	stateWaiting trackState = iota // not submitted yet
	stateQueued                    // submitted
	stateUnsent                    // never submitted: the batch stopped before it
)

// submitResult is the outcome of publishing one request.
type submitResult struct {
	t   *tracked
	sub *jobs.Submitted
	err error
}

// submitAll publishes the plans in order and, with --wait, follows their
// events until each has its terminal event. It returns the exit status.
func submitAll(ctx context.Context, e env, sess *session, plans []*plan, o *submitOptions) int {
	started := time.Now()
	reqs := make([]*tracked, len(plans))
	byID := make(map[string]*tracked, len(plans))
	for i, p := range plans {
		reqs[i] = &tracked{plan: p}
		byID[p.req.ID] = reqs[i]
	}
	disp := newDisplay(e, o, reqs)

	var events <-chan received
	if o.wait {
		// Ids are assigned before anything is published, so the follower
		// starts first and replays each request's subject from the
		// beginning: nothing is missed, whatever the timing, and a
		// duplicate's earlier events are included.
		subjects := make([]string, len(reqs))
		for i, t := range reqs {
			subjects[i] = jobs.EventSubject(t.req.Tenant, t.req.ID)
		}
		f, err := follow(ctx, sess.js, subjects, maxFilters)
		if err != nil {
			fmt.Fprintf(e.stderr, "enqueue submit: %v\n", err)
			return exitFailed
		}
		defer f.stop()
		events = f.events
	}

	disp.begin()
	results := make(chan submitResult)
	go publish(ctx, sess.client, reqs, results)

	var submitErr, followErr error
	pending := results
	waiting := func() bool {
		return o.wait && submitErr == nil && followErr == nil && (pending != nil || !allEnded(reqs))
	}
loop:
	for pending != nil || waiting() {
		select {
		case r, ok := <-pending:
			if !ok {
				pending = nil
				continue
			}
			if r.err != nil {
				submitErr = r.err
				continue
			}
			queue(disp, r.t, r.sub)
		case rc := <-events:
			if rc.err != nil {
				if rc.fatal {
					followErr = rc.err
				} else {
					disp.warn(rc.err)
				}
				continue
			}
			switch t := byID[rc.ev.Data.RequestID]; {
			case t == nil:
				disp.warn(fmt.Errorf("event %s is for no request of this batch", rc.ev.ID))
			case t.state == stateWaiting:
				t.early = append(t.early, rc)
			default:
				apply(disp, t, rc)
			}
		case <-ctx.Done():
			break loop
		}
	}
	// The publisher sends every result it has, then closes: collect them
	// so no submitted id goes unreported.
	if pending != nil {
		for r := range pending {
			if r.err == nil {
				queue(disp, r.t, r.sub)
			} else if submitErr == nil {
				submitErr = r.err
			}
		}
	}
	for _, t := range reqs {
		if t.state == stateWaiting {
			t.state = stateUnsent
		}
	}
	sum := summarize(reqs, time.Since(started))
	disp.end(sum)
	return finish(ctx, e, o, reqs, sum, submitErr, followErr)
}

// queue records a confirmed submit, then the events that came before it.
func queue(disp display, t *tracked, sub *jobs.Submitted) {
	t.state, t.sub = stateQueued, sub
	disp.submitted(t)
	for _, rc := range t.early {
		apply(disp, t, rc)
	}
	t.early = nil
	// A job that ended long ago may have outlived its events; its
	// checkpoint still holds the terminal event.
	if ex := sub.Existing; ex != nil && ex.Done() && ex.Terminal != nil && t.end == nil {
		raw, err := json.Marshal(ex.Terminal)
		if err != nil {
			disp.warn(err)
			return
		}
		apply(disp, t, received{ev: *ex.Terminal, raw: raw})
	}
}

// apply updates a request with one of its events and shows it.
func apply(disp display, t *tracked, rc received) {
	if t.end != nil {
		return // the terminal event is the last word
	}
	ev := rc.ev
	if ev.Type == jobs.TypeStepCompleted {
		if i := stepOf(ev.Data.Step); i > 0 {
			t.steps, t.step = i, ev.Data.Step
		}
	}
	if ev.Terminal() {
		t.end, t.endRaw = &ev, rc.raw
	}
	disp.event(t, &ev)
}

// allEnded reports whether every submitted request has its terminal event.
func allEnded(reqs []*tracked) bool {
	for _, t := range reqs {
		if t.state == stateQueued && t.end == nil {
			return false
		}
	}
	return true
}

// finish reports why the batch stopped and picks the exit status.
func finish(ctx context.Context, e env, o *submitOptions, reqs []*tracked, sum summary, submitErr, followErr error) int {
	code := exitOK
	if o.wait && (sum.failed > 0 || sum.rejected > 0 || sum.cancelled > 0) {
		code = exitFailed
	}
	switch {
	case ctx.Err() != nil:
		what := "interrupted"
		code = exitInterrupted
		if errors.Is(context.Cause(ctx), errTimedOut) {
			what, code = "timed out after "+o.timeout.String(), exitTimeout
		}
		fmt.Fprintf(e.stderr, "enqueue submit: %s\n", what)
	case submitErr != nil:
		fmt.Fprintf(e.stderr, "enqueue submit: %v\n", submitErr)
		code = exitFailed
		var verr *jobs.ValidationError
		if errors.As(submitErr, &verr) {
			code = exitUsage
		}
	case followErr != nil:
		fmt.Fprintf(e.stderr, "enqueue submit: %v\n", followErr)
		code = exitFailed
	}
	if sum.unsent > 0 {
		fmt.Fprintf(e.stderr, "enqueue submit: %d request(s) were not submitted\n", sum.unsent)
	}
	if o.wait && sum.unfinished > 0 {
		var ids []string
		for _, t := range reqs {
			if t.state == stateQueued && t.end == nil {
				ids = append(ids, t.req.ID)
			}
		}
		fmt.Fprintf(e.stderr, "enqueue submit: %d submitted request(s) have not ended and keep running; follow one with `enqueue watch --id ID --from-start`:\n  %s\n",
			len(ids), strings.Join(ids, "\n  "))
	}
	return code
}

// publish submits the requests one by one and stops at the first error:
// a failure to publish (NATS down, permissions) would repeat for every
// request after it. It sends every result, then closes results.
func publish(ctx context.Context, client *jobs.Client, reqs []*tracked, results chan<- submitResult) {
	defer close(results)
	for _, t := range reqs {
		if ctx.Err() != nil {
			return
		}
		sub, err := client.Submit(ctx, t.req, t.archive.Data)
		if err != nil {
			err = fmt.Errorf("submit %s: %w", orCommandLine(t.where)+" ("+t.req.ID+")", err)
		}
		results <- submitResult{t: t, sub: sub, err: err}
		if err != nil {
			return
		}
	}
}

// summary counts a batch's outcomes.
type summary struct {
	succeeded, failed, rejected, cancelled int
	unfinished, unsent                     int
	elapsed                                time.Duration
}

func summarize(reqs []*tracked, elapsed time.Duration) summary {
	s := summary{elapsed: elapsed}
	for _, t := range reqs {
		switch {
		case t.state == stateUnsent:
			s.unsent++
		case t.end == nil:
			s.unfinished++
		case t.end.Type == jobs.TypeSucceeded:
			s.succeeded++
		case t.end.Type == jobs.TypeFailed:
			s.failed++
		case t.end.Type == jobs.TypeRejected:
			s.rejected++
		default:
			s.cancelled++
		}
	}
	return s
}

// String is the batch's last line: "20 succeeded, 1 failed, 0 rejected in 12.3s".
func (s summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d succeeded, %d failed, %d rejected", s.succeeded, s.failed, s.rejected)
	if s.cancelled > 0 {
		fmt.Fprintf(&b, ", %d cancelled", s.cancelled)
	}
	if s.unfinished > 0 {
		fmt.Fprintf(&b, ", %d unfinished", s.unfinished)
	}
	if s.unsent > 0 {
		fmt.Fprintf(&b, ", %d not submitted", s.unsent)
	}
	fmt.Fprintf(&b, " in %s", s.elapsed.Round(100*time.Millisecond))
	return b.String()
}
