package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
)

// batchOptions are the flags and wording shared by the commands that
// publish requests and may follow them to their end: submit and dlq replay.
type batchOptions struct {
	cmd     string // the command in messages: "submit", "dlq replay"
	verb    string // what publishing did to a request: "submitted", "replayed"
	wait    bool
	json    bool
	timeout time.Duration
	// keepGoing goes on after a request that could not be published: its
	// error is its own (a replay's expired tarball), not one that would
	// repeat for every request after it.
	keepGoing bool
}

// tracked is one request of a batch, from plan to terminal event.
type tracked struct {
	*plan
	state trackState
	sub   *jobs.Submitted
	// run is the run the publish started; events of other runs (a
	// replayed request's earlier ones) are not this request's. 0 accepts
	// every event.
	run   int
	err   error     // why it was not published (stateUnsent)
	steps int       // pipeline steps completed
	step  jobs.Step // the last of them
	// since is when the request entered its current phase: submitted, or
	// its last step completed (the event's time).
	since time.Time
	// waiting says what the step in progress waits for (a waiting
	// event), since waitSince; cleared by the next step's event.
	waiting   string
	waitSince time.Time
	end       *jobs.Event
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
	stateUnsent                    // never submitted: the batch stopped before it, or it failed on its own
)

// sender publishes one request of a batch: a replay. run is the run it
// starts, 0 when unknown (every event of the id is its own).
type sender func(ctx context.Context, t *tracked) (sub *jobs.Submitted, run int, err error)

// publisher publishes the requests of a batch in order, sends each one's
// result and then closes results. Unless keepGoing, it stops after the
// first failure: a failure to publish (NATS down, permissions) would
// repeat for every request after it.
type publisher func(ctx context.Context, reqs []*tracked, keepGoing bool, results chan<- submitResult)

// submitResult is the outcome of publishing one request.
type submitResult struct {
	t   *tracked
	sub *jobs.Submitted
	run int
	err error
}

// submitAll publishes the plans in order and, with --wait, follows their
// events until each has its terminal event. It returns the exit status.
func submitAll(ctx context.Context, e env, sess *session, plans []*plan, o *submitOptions) int {
	// Ids are assigned before anything is published, so the follower
	// starts first and replays each request's subject from the beginning:
	// nothing is missed, whatever the timing, and a duplicate's earlier
	// events are included.
	return runBatch(ctx, e, sess, plans, o.batchOptions, submitInBatches(sess.client), 0)
}

// maxSubmitBatch bounds one SubmitBatch call: its results show when it
// returns, so a long file shows progress at least this often.
const maxSubmitBatch = 500

// submitInBatches publishes consecutive requests of one tarball (a
// --repeat, a file whose lines share a source) with one SubmitBatch call,
// which pipelines their round trips instead of paying them in turn. Only
// consecutive requests are grouped, so they are still published in the
// order given, and a failure stops the batch at the same place as before,
// give or take the rest of its call.
func submitInBatches(client *jobs.Client) publisher {
	return func(ctx context.Context, reqs []*tracked, keepGoing bool, results chan<- submitResult) {
		defer close(results)
		for len(reqs) > 0 {
			if ctx.Err() != nil {
				return
			}
			n := 1
			for n < len(reqs) && n < maxSubmitBatch && reqs[n].archive.SHA1 == reqs[0].archive.SHA1 {
				n++
			}
			group := reqs[:n]
			reqs = reqs[n:]
			batch := make([]jobs.Request, len(group))
			for i, t := range group {
				batch[i] = t.req
			}
			res, err := client.SubmitBatch(ctx, batch, group[0].archive.Data)
			for i, t := range group {
				r := submitResult{t: t}
				if res[i].Err != nil {
					r.err = fmt.Errorf("submit %s: %w", orCommandLine(t.where)+" ("+t.req.ID+")", res[i].Err)
				} else {
					sub := res[i].Submitted
					r.sub = &sub
				}
				results <- r
			}
			if err != nil && !keepGoing {
				return
			}
		}
	}
}

// oneByOne publishes the requests with send, one after the other.
func oneByOne(send sender) publisher {
	return func(ctx context.Context, reqs []*tracked, keepGoing bool, results chan<- submitResult) {
		defer close(results)
		for _, t := range reqs {
			if ctx.Err() != nil {
				return
			}
			sub, run, err := send(ctx, t)
			results <- submitResult{t: t, sub: sub, run: run, err: err}
			if err != nil && !keepGoing {
				return
			}
		}
	}
}

// runBatch publishes the plans in order with publish and, with --wait,
// follows their events (those past stream sequence after) until each has
// its terminal event. It returns the exit status.
func runBatch(ctx context.Context, e env, sess *session, plans []*plan, o batchOptions, publish publisher, after uint64) int {
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
		subjects := make([]string, len(reqs))
		ids := make([]string, len(reqs))
		for i, t := range reqs {
			subjects[i] = jobs.EventSubject(t.req.Tenant, t.req.ID)
			ids[i] = t.req.ID
		}
		var f *follower
		var err error
		if sess.tenant != "" {
			f, err = followTenant(ctx, sess.client, sess.tenant, ids)
		} else {
			f, err = follow(ctx, sess.js, subjects, maxFilters, after)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "enqueue %s: %v\n", o.cmd, err)
			return exitFailed
		}
		defer f.stop()
		events = f.events
	}

	disp.begin()
	results := make(chan submitResult)
	go publish(ctx, reqs, o.keepGoing, results)

	var submitErr, followErr error
	pending := results
	waiting := func() bool {
		return o.wait && submitErr == nil && followErr == nil && (pending != nil || !allEnded(reqs))
	}
	record := func(r submitResult) {
		switch {
		case r.err == nil:
			queue(disp, r.t, r.sub, r.run)
		case o.keepGoing:
			r.t.state, r.t.err = stateUnsent, r.err
		case submitErr == nil:
			submitErr = r.err
		}
	}
	// A live table's phases show their elapsed time: it is redrawn every
	// second between events.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for pending != nil || waiting() {
		select {
		case <-tick.C:
			disp.tick()
		case r, ok := <-pending:
			if !ok {
				pending = nil
				continue
			}
			record(r)
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
			record(r)
		}
	}
	for _, t := range reqs {
		if t.state == stateWaiting {
			t.state = stateUnsent
		}
	}
	sum := summarize(reqs, time.Since(started))
	sum.verb = o.verb
	disp.end(sum)
	return finish(ctx, e, o, reqs, sum, submitErr, followErr)
}

// queue records a confirmed submit, then the events that came before it.
func queue(disp display, t *tracked, sub *jobs.Submitted, run int) {
	t.state, t.sub, t.run, t.since = stateQueued, sub, run, time.Now()
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
	if t.run > 0 && max(ev.Data.Run, 1) != t.run {
		return // an earlier run's event, such as the failure a replay retries
	}
	if ev.Type == jobs.TypeStepCompleted {
		if i := stepOf(ev.Data.Step); i > 0 {
			t.steps, t.step, t.since = i, ev.Data.Step, ev.Time
		}
		t.waiting = ""
	}
	if ev.Type == jobs.TypeWaiting {
		t.waiting, t.waitSince = waitingText(&ev), ev.Time
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
func finish(ctx context.Context, e env, o batchOptions, reqs []*tracked, sum summary, submitErr, followErr error) int {
	code := exitOK
	if o.wait && (sum.failed > 0 || sum.rejected > 0 || sum.cancelled > 0) {
		code = exitFailed
	}
	for _, t := range reqs {
		if t.err != nil {
			fmt.Fprintf(e.stderr, "enqueue %s: %v\n", o.cmd, t.err)
			code = exitFailed
		}
	}
	switch {
	case ctx.Err() != nil:
		what := "interrupted"
		code = exitInterrupted
		if errors.Is(context.Cause(ctx), errTimedOut) {
			what, code = "timed out after "+o.timeout.String(), exitTimeout
		}
		fmt.Fprintf(e.stderr, "enqueue %s: %s\n", o.cmd, what)
	case submitErr != nil:
		fmt.Fprintf(e.stderr, "enqueue %s: %v\n", o.cmd, submitErr)
		code = exitFailed
		var verr *jobs.ValidationError
		if errors.As(submitErr, &verr) {
			code = exitUsage
		}
	case followErr != nil:
		fmt.Fprintf(e.stderr, "enqueue %s: %v\n", o.cmd, followErr)
		code = exitFailed
	}
	if sum.unsent > 0 {
		fmt.Fprintf(e.stderr, "enqueue %s: %d request(s) were not %s\n", o.cmd, sum.unsent, o.verb)
	}
	if o.wait && sum.unfinished > 0 {
		var ids []string
		for _, t := range reqs {
			if t.state == stateQueued && t.end == nil {
				ids = append(ids, t.req.ID)
			}
		}
		fmt.Fprintf(e.stderr, "enqueue %s: %d %s request(s) have not ended and keep running; follow one with `enqueue watch --id ID --from-start`:\n  %s\n",
			o.cmd, len(ids), o.verb, strings.Join(ids, "\n  "))
	}
	return code
}

// summary counts a batch's outcomes.
type summary struct {
	succeeded, failed, rejected, cancelled int
	unfinished, unsent                     int
	// duplicates is how many of the ended requests were duplicate
	// submits, whose outcome is an earlier job's.
	duplicates int
	elapsed    time.Duration
	verb       string // "submitted" unless set
}

func summarize(reqs []*tracked, elapsed time.Duration) summary {
	s := summary{elapsed: elapsed}
	for _, t := range reqs {
		switch {
		case t.state == stateUnsent:
			s.unsent++
		case t.end == nil:
			s.unfinished++
			continue
		case t.end.Type == jobs.TypeSucceeded:
			s.succeeded++
		case t.end.Type == jobs.TypeFailed:
			s.failed++
		case t.end.Type == jobs.TypeRejected:
			s.rejected++
		default:
			s.cancelled++
		}
		if t.sub != nil && t.sub.Duplicate {
			s.duplicates++
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
		fmt.Fprintf(&b, ", %d not %s", s.unsent, cmp.Or(s.verb, "submitted"))
	}
	if s.duplicates > 0 {
		fmt.Fprintf(&b, " (%d of them duplicates: an earlier job's outcome, nothing ran again)", s.duplicates)
	}
	fmt.Fprintf(&b, " in %s", s.elapsed.Round(100*time.Millisecond))
	return b.String()
}
