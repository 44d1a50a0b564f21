package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/nats-io/nats.go/jetstream"
)

// submitAll submits every request. A submit that fails is retried with
// the same id, as a producer would: the id makes the retry harmless.
func submitAll(t *testing.T, client *jobs.Client, js jetstream.JetStream, reqs []request) {
	t.Helper()
	for i := range reqs {
		r := &reqs[i]
		var err error
		for range 5 {
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			if r.raw != nil {
				// As Submit does: stored only if the id has no message queued.
				_, err = js.Publish(ctx, r.subject, r.raw, jetstream.WithExpectLastSequencePerSubject(0))
				var apiErr *jetstream.APIError
				if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
					err = nil // an earlier attempt's message is queued
				}
			} else {
				_, err = client.Submit(ctx, r.Request, r.tarball)
			}
			cancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("submit %s: %v", r.ID, err)
		}
	}
}

// watchTerminal sends every terminal event to out until ctx ends. A
// watch broken by the cluster is started again from the beginning; the
// receiver keeps the first event per request.
func watchTerminal(ctx context.Context, t *testing.T, client *jobs.Client, out chan<- jobs.Event) {
	for restarts := 0; ctx.Err() == nil && restarts < 1000; restarts++ {
		w, err := client.Watch(ctx, jobs.WatchFilter{FromStart: true})
		if err != nil {
			if ctx.Err() == nil {
				t.Logf("watch events: %v; watching again", err)
			}
			wait(ctx, 500*time.Millisecond)
			continue
		}
		for ev, err := range w.Events() {
			if err != nil {
				if ctx.Err() == nil {
					t.Logf("watch events: %v", err)
				}
				continue
			}
			if !ev.Terminal() {
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				w.Stop()
				return
			}
		}
		w.Stop()
	}
}

// wait is a pause before a retry: a schedule, not a wait for an outcome.
func wait(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// runStats is what the chaos did and saw.
type runStats struct {
	ended         map[string]jobs.Event // first terminal event seen per id
	kills         int
	nodeRestarts  int
	nodeDown      string  // which node went down and what it led
	crashes       []*proc // workers that exited by themselves after they took work
	startFailures []*proc // workers that exited by themselves before
	timedOut      bool
	seed          uint64
	submitted     time.Duration // time to submit the batch
	allEnded      time.Duration // from the first submit to the last terminal event
	appsSettled   time.Duration // from the first submit to every app claimed, expired or failed
	drained       time.Duration // from the last terminal event to an empty work queue; -1 if it never was
	wall          time.Duration // from the first submit to the workers' shutdown
}

// runChaos kills a random worker every killEvery and starts another in
// its place, stops the NATS node leading the requests stream once, and
// goes on until every request has its terminal event and the node is back,
// or the deadline passes.
func runChaos(t *testing.T, sc scenario, cluster *natsembed.Cluster, js jetstream.JetStream, f *fleet, terminal <-chan jobs.Event, reqs []request, appsSettled func() bool) *runStats {
	began := time.Now()
	run := &runStats{ended: map[string]jobs.Event{}, seed: rand.Uint64()}
	rng := rand.New(rand.NewPCG(run.seed, run.seed^0x6368616f73))
	t.Logf("chaos %s: %d requests, %d workers × %d, a SIGKILL every %s (schedule seed %d)",
		sc.name, len(reqs), sc.workers, sc.concurrency, sc.killEvery, run.seed)

	kill := time.NewTicker(sc.killEvery)
	defer kill.Stop()
	nodeDown := time.NewTimer(sc.nodeDownAt)
	defer nodeDown.Stop()
	deadline := time.NewTimer(sc.deadline)
	defer deadline.Stop()
	var nodeUp <-chan time.Time
	restarted := make(chan error, 1)
	down := -1
	restarting := false

	// Once every request has ended, the apps are looked at every half
	// second until each has come to its end (claimed or expired), the
	// workers still being killed meanwhile.
	appCheck := time.NewTicker(500 * time.Millisecond)
	defer appCheck.Stop()
	settled := false
	for len(run.ended) < len(reqs) || run.nodeRestarts == 0 || !settled {
		select {
		case <-appCheck.C:
			if len(run.ended) == len(reqs) && !settled && appsSettled() {
				settled, run.appsSettled = true, time.Since(began)
			}

		case ev := <-terminal:
			if _, seen := run.ended[ev.Data.RequestID]; !seen {
				run.ended[ev.Data.RequestID] = ev
				if len(run.ended) == len(reqs) {
					run.allEnded = time.Since(began)
				}
			}

		case <-kill.C:
			slot := rng.IntN(sc.workers)
			if err := f.kill(slot); err != nil {
				t.Fatal(err)
			}
			run.kills++
			if _, err := f.start(slot); err != nil {
				t.Fatal(err)
			}

		case <-nodeDown.C:
			var what string
			down, what = leaderNode(t, cluster, js)
			run.nodeDown = what
			t.Logf("%s: stopping NATS node %s", time.Since(began).Round(time.Millisecond), what)
			cluster.StopNode(down)
			nodeUp = time.After(sc.nodeDownFor)

		case <-nodeUp:
			nodeUp, restarting = nil, true
			go func() { restarted <- cluster.RestartNode(down) }()

		case err := <-restarted:
			restarting = false
			if err != nil {
				t.Errorf("restart NATS node %d: %v", down, err)
			}
			run.nodeRestarts++
			t.Logf("%s: NATS node back and caught up", time.Since(began).Round(time.Millisecond))

		case p := <-f.exited:
			if p.killed.Load() {
				continue
			}
			// A worker that could not start (NATS electing a leader, say)
			// exits 1 and its supervisor starts it again; one that
			// stopped after it took work crashed.
			if p.hasStarted() {
				run.crashes = append(run.crashes, p)
				t.Errorf("%s exited by itself after it took work: %s; last lines of %s:\n  %s",
					p, p.cmd.ProcessState, p.logPath, strings.Join(tail(p.logPath, 15, 400), "\n  "))
			} else {
				run.startFailures = append(run.startFailures, p)
				t.Logf("%s could not start (%s): %s", p, p.cmd.ProcessState, strings.Join(tail(p.logPath, 1, 300), ""))
			}
			if _, err := f.start(p.slot); err != nil {
				t.Fatal(err)
			}

		case <-deadline.C:
			run.timedOut = true
			if restarting {
				// RestartNode bounds its own wait.
				if err := <-restarted; err == nil {
					run.nodeRestarts++
				}
			}
			return run
		}
	}
	run.drained = awaitDrained(t, sc, js)
	return run
}

// awaitDrained waits, the workers still running and no longer killed, for
// the work queue to empty: a worker killed between a request's terminal
// event and its ack leaves the message to come back after its lease
// (AckWait), when a rescan finds it (every 10 s) and a worker settles it
// as already ended. It returns how long that took, or -1 if the queue
// still held messages after AckWait and two rescans.
func awaitDrained(t *testing.T, sc scenario, js jetstream.JetStream) time.Duration {
	began := time.Now()
	limit := sc.ackWait + 25*time.Second
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		left, pending := queueLeft(ctx, t, js)
		cancel()
		if left == 0 && pending == 0 {
			return time.Since(began)
		}
		if time.Since(began) > limit {
			return -1
		}
		time.Sleep(200 * time.Millisecond) // polling the queue, bounded by limit
	}
}

// leaderNode finds the node leading the requests stream, the hardest one
// to lose, and describes what else it leads.
func leaderNode(t *testing.T, cluster *natsembed.Cluster, js jetstream.JetStream) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	leaders := map[string][]string{}
	for _, name := range []string{jobs.StreamRequests, jobs.StreamEvents, jobs.StreamDLQ, "KV_" + jobs.BucketJobs, "KV_DEPLOY_BUDGET"} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			continue
		}
		if info, err := s.Info(ctx); err == nil && info.Cluster != nil {
			leaders[info.Cluster.Leader] = append(leaders[info.Cluster.Leader], name)
		}
	}
	if s, err := js.Stream(ctx, jobs.StreamRequests); err == nil {
		infos := s.ListConsumers(ctx)
		for info := range infos.Info() {
			if info.Cluster != nil {
				leaders[info.Cluster.Leader] = append(leaders[info.Cluster.Leader], "consumer "+info.Name)
			}
		}
	}
	idx := -1
	for i := range cluster.Size() {
		ns := cluster.Node(i).NATS()
		if ns.JetStreamIsLeader() {
			leaders[ns.Name()] = append(leaders[ns.Name()], "JetStream meta")
		}
		if slices.Contains(leaders[ns.Name()], jobs.StreamRequests) {
			idx = i
		}
	}
	if idx < 0 {
		t.Errorf("no leader of %s found; stopping node 0 instead (leaders: %v)", jobs.StreamRequests, leaders)
		idx = 0
	}
	name := cluster.Node(idx).NATS().Name()
	what := name
	if l := leaders[name]; len(l) > 0 {
		what += " (leader of " + strings.Join(l, ", ") + ")"
	}
	return idx, what
}

func describeMissing(ctx context.Context, js jetstream.JetStream, f *fleet, missing []request) string {
	var b strings.Builder
	kv, err := js.KeyValue(ctx, jobs.BucketJobs)
	if err != nil {
		fmt.Fprintf(&b, "  (checkpoints unreadable: %v)\n", err)
	}
	if kv != nil {
		// Where they stand, in one line: a common stop is the first clue.
		at := map[string]int{}
		for _, r := range missing {
			st, err := jobs.ReadState(ctx, kv, r.Tenant, r.ID)
			switch {
			case err != nil:
				at["(unreadable)"]++
			case st == nil:
				at["(not started)"]++
			default:
				at[string(st.Status)+" after "+orNone(string(st.Step))]++
			}
		}
		fmt.Fprintf(&b, "  checkpoints: %s\n", byEndpoint(at))
	}
	for i, r := range missing {
		if i == 10 {
			fmt.Fprintf(&b, "  … and %d more\n", len(missing)-i)
			break
		}
		fmt.Fprintf(&b, "  %s (%s, to end %s)", r.ID, r.Tenant, r.outcome())
		if kv != nil {
			st, err := jobs.ReadState(ctx, kv, r.Tenant, r.ID)
			switch {
			case err != nil:
				fmt.Fprintf(&b, "; checkpoint unreadable: %v", err)
			case st == nil:
				fmt.Fprintf(&b, "; no checkpoint (never started)")
			default:
				fmt.Fprintf(&b, "; checkpoint: status %s, last step %q, owner %s, lease %d, attempts %d, seq %d",
					st.Status, st.Step, st.Owner, st.Lease, st.Attempts, st.Seq)
				if n := len(st.Errors); n > 0 {
					fmt.Fprintf(&b, ", last error %s: %s", st.Errors[n-1].Step, clip(st.Errors[n-1].Message, 200))
				}
			}
		}
		b.WriteString("\n")
		for _, l := range f.grep(`"`+r.ID+`"`, 8, 300) {
			fmt.Fprintf(&b, "      %s\n", l)
		}
	}
	if s, err := js.Stream(ctx, jobs.StreamRequests); err == nil {
		infos := s.ListConsumers(ctx)
		for info := range infos.Info() {
			fmt.Fprintf(&b, "  consumer %s: %d pending, %d awaiting ack, %d redelivered, %d pulls waiting\n",
				info.Name, info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting)
		}
	}
	return b.String()
}

func orNone(step string) string {
	if step == "" {
		return "no step"
	}
	return step
}
