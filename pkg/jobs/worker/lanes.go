package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/deployq/deployq/internal/fair"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Fair dispatch. Every tenant's requests have a consumer of their own on
// the work queue (jobs.TenantConsumer, a lane), shared by every worker.
// A worker with free slots asks the lanes for requests in the order
// internal/fair gives: while several tenants have requests waiting, each
// gets a share of the slots in proportion to its weight; a tenant alone
// gets them all. Nothing is fetched ahead of a free slot, so a request
// waits in the stream, where any worker can take it, and never in one
// worker's buffer while another sits idle.
//
// A worker learns which lanes have requests waiting from the stream: it
// announces each request it stores (jobs.Queued, the headers alone, once
// the request can be fetched), and a fetch tells a worker when a lane ran
// dry. What a hint can miss (requests
// queued before the worker started, a redelivery after a lapsed lease, a
// hint lost to a reconnect) a rescan finds: the lanes' pending counts,
// and, when the stream holds more requests than the lanes account for,
// the stream's subjects.

// legacyLane is the tenant token of the lane of requests on
// deploy.requests.<tenant>, the form of earlier versions, taken by the
// consumer jobs.Setup creates.
const legacyLane = ""

// laneKey names a lane: a tenant token's interactive requests, or its
// batch requests (jobs.BatchConsumer). A tenant's turn goes to one of its
// lanes: the interactive one, but every fair.BatchEvery-th turn to the
// batch one while both have requests waiting, so batch work yields to
// interactive work and is never starved.
type laneKey struct {
	token string
	batch bool
}

// lanes is one worker's view of the tenants with requests waiting.
type lanes struct {
	w *Worker

	mu sync.Mutex
	// flows orders the tenants (by token); known holds their lanes.
	flows *fair.Flows
	known map[laneKey]*lane
	// turns counts each tenant's turns while both its lanes wait.
	turns map[string]int
	// wake is signalled when a lane gets requests: the fetch loop waits on
	// it while no lane has any.
	wake chan struct{}
	// held counts, per tenant token, the requests this worker holds for
	// the tenant's spent quota (quota.go): a tenant with any is out of
	// the turns.
	held map[string]int
}

// lane is one consumer of a tenant's requests, as this worker knows it.
type lane struct {
	key      laneKey
	consumer jetstream.Consumer // nil until created (or after the server deleted it)
	// waiting is true while the lane may have requests: since a hint, a
	// rescan or a recheck, until a fetch finds it dry.
	waiting bool
	// hints counts the hints since the lane was last found dry: a fetch
	// that finds it dry marks it so only if no hint came meanwhile.
	hints uint64
	// rechecked is the hint count at which the lane was last asked again
	// after a hinted fetch came back empty (see take).
	rechecked uint64
	// refusals counts the server's refusals to make the lane's consumer.
	refusals int
}

// recheckAfter is how long after a hinted fetch came back empty the lane
// is asked once more. The stream announces a request once it is stored,
// but the consumer counts it a moment later: a no_wait fetch in between
// finds nothing, and without a second look the request would wait for
// the next rescan.
const recheckAfter = 50 * time.Millisecond

func newLanes(w *Worker) *lanes {
	legacy := laneKey{token: legacyLane}
	return &lanes{w: w, flows: fair.NewFlows(), wake: make(chan struct{}, 1), held: map[string]int{}, turns: map[string]int{},
		known: map[laneKey]*lane{legacy: {key: legacy, consumer: w.assets.Consumer}}}
}

// lane returns the lane of k, made on first use. ls.mu is held.
func (ls *lanes) lane(k laneKey) *lane {
	l := ls.known[k]
	if l == nil {
		l = &lane{key: k}
		ls.known[k] = l
	}
	return l
}

// activate gives a tenant turns, unless it is held. ls.mu is held.
func (ls *lanes) activate(token string) {
	if ls.held[token] == 0 {
		ls.flows.Activate(token, ls.w.cfg.TenantWeights[token])
	}
}

// dry marks a lane as without requests, and its tenant as without turns
// once neither of its lanes has any. ls.mu is held.
func (ls *lanes) dry(l *lane) {
	l.waiting = false
	if o := ls.known[laneKey{l.key.token, !l.key.batch}]; o == nil || !o.waiting {
		ls.flows.Deactivate(l.key.token)
		delete(ls.turns, l.key.token)
	}
}

// pick is the lane whose request goes at the tenant's turn. ls.mu is held.
func (ls *lanes) pick(token string) *lane {
	i, b := ls.known[laneKey{token, false}], ls.known[laneKey{token, true}]
	iw, bw := i != nil && i.waiting, b != nil && b.waiting
	switch {
	case iw && bw:
		ls.turns[token]++
		if ls.turns[token]%fair.BatchEvery == 0 {
			return b
		}
		return i
	case bw:
		return b
	case iw:
		return i
	}
	return nil
}

func (ls *lanes) signal() {
	select {
	case ls.wake <- struct{}{}:
	default:
	}
}

// hint records that lane k may have requests waiting.
func (ls *lanes) hint(k laneKey) {
	ls.mu.Lock()
	l := ls.lane(k)
	l.hints++
	l.waiting = true
	ls.activate(k.token)
	ls.mu.Unlock()
	ls.signal()
}

// laneRetry is how long a lane the server refuses is set aside before it
// is tried again.
const laneRetry = 10 * time.Second

// setAside takes a lane whose consumer the server refuses out of the
// turns for laneRetry, and says so (on the first refusal, then every
// 30th): its requests wait in the stream meanwhile.
func (ls *lanes) setAside(l *lane, err error) {
	ls.mu.Lock()
	ls.dry(l)
	l.refusals++
	n := l.refusals
	ls.mu.Unlock()
	if n%30 == 1 {
		ls.w.log.Warn("the server refuses a tenant's consumer; its requests wait, and it is tried again", "consumer", consumerName(l.key), "refusals", n, "retry", laneRetry, "err", err)
	}
	time.AfterFunc(laneRetry, func() { ls.recheck(l.key) })
}

// cappedLane is the lane of a request's subject when its tenant has a
// running cap (Config.TenantMaxRunning).
func (w *Worker) cappedLane(subject string) (laneKey, bool) {
	token, batch, ok := jobs.RequestLane(subject)
	return laneKey{token, batch}, ok && w.cfg.TenantMaxRunning[token] > 0
}

// recheck asks lane k once more, without counting a hint.
func (ls *lanes) recheck(k laneKey) {
	ls.mu.Lock()
	ls.lane(k).waiting = true
	ls.activate(k.token)
	ls.mu.Unlock()
	ls.signal()
}

// hold takes a tenant out of this worker's turns while it holds one of
// its requests for the tenant's quota.
func (ls *lanes) hold(token string) {
	ls.mu.Lock()
	ls.held[token]++
	ls.flows.Deactivate(token)
	ls.mu.Unlock()
}

// unhold ends a hold of a request of lane k; the tenant has turns again
// once none is left, starting with that lane.
func (ls *lanes) unhold(k laneKey) {
	ls.mu.Lock()
	ls.held[k.token]--
	free := ls.held[k.token] <= 0
	if free {
		delete(ls.held, k.token)
	}
	ls.mu.Unlock()
	if free {
		ls.recheck(k)
	}
}

// quotaRoom bounds a fetch from the lane of a tenant with a quota to the
// deploys its quota has room for, as this worker last saw it, and to one
// when it has none: a request past the quota is held or rejected at its
// turn, and fetching more would only hold more.
func (ls *lanes) quotaRoom(token string, k int) int {
	q := ls.w.cfg.Quotas
	if token == legacyLane || !q.Limited(token) {
		return k
	}
	used, _ := q.Use(token)
	for i, c := range q.Quota(token) {
		if i < len(used) {
			k = min(k, c.Requests-used[i])
		}
	}
	return max(k, 1)
}

// listen subscribes to the stream's announcements of stored requests, and
// to the hints of requests handed back: each is a hint for its tenant's
// lane.
func (ls *lanes) listen() (func(), error) {
	nc := ls.w.js.Conn()
	requests, err := nc.Subscribe(jobs.Queued, func(m *nats.Msg) { ls.hintSubject(m.Header.Get(jetstream.SubjectHeader)) })
	if err != nil {
		return nil, err
	}
	// A burst must not cost the subscription: a dropped hint only waits
	// for the next rescan, but there is no reason to drop.
	_ = requests.SetPendingLimits(-1, 64<<20)
	handedBack, err := nc.Subscribe(jobs.LaneHints, func(m *nats.Msg) { ls.hintSubject(string(m.Data)) })
	if err != nil {
		_ = requests.Unsubscribe()
		return nil, err
	}
	return func() { _ = requests.Unsubscribe(); _ = handedBack.Unsubscribe() }, nil
}

// hintSubject hints the lane of a request's subject.
func (ls *lanes) hintSubject(subject string) { ls.hint(ls.laneOf(subject)) }

// laneOf is the lane whose consumer takes a request's subject: its
// tenant's (interactive or batch), or the shared one (the old subject
// form, or every request in arrival order).
func (ls *lanes) laneOf(subject string) laneKey {
	if token, batch, ok := jobs.RequestLane(subject); ok && !ls.w.assets.Config.ArrivalOrder {
		return laneKey{token, batch}
	}
	return laneKey{token: legacyLane}
}

// take fetches up to n requests from the lanes with requests waiting, in
// fair order, and starts each with start. It returns how many it started,
// and whether any fetch was answered. It never waits for requests to
// arrive: a lane that has none is marked dry until a hint or a rescan says
// otherwise.
func (ls *lanes) take(ctx context.Context, n int, start func(jetstream.Msg, time.Time)) (taken int, fetched bool, err error) {
	for taken < n && ctx.Err() == nil {
		decided := time.Now()
		ls.mu.Lock()
		token, ok := ls.flows.Next()
		if !ok {
			ls.mu.Unlock()
			break
		}
		l := ls.pick(token)
		if l == nil {
			ls.flows.Deactivate(token) // a turn with no lane waiting
			ls.mu.Unlock()
			continue
		}
		hints := l.hints
		// A tenant alone takes every free slot at once; among several,
		// each turn takes an equal part of them, so a turn costs one
		// round trip and the shares still hold.
		k := n - taken
		if waiting := ls.flows.Waiting(); waiting > 1 {
			k = max(1, k/waiting)
		}
		k = ls.quotaRoom(token, k)
		capped := ls.w.cfg.TenantMaxRunning[token] > 0
		if capped {
			k = 1 // see fetch
		}
		ls.mu.Unlock()
		ls.w.m.DispatchDecision(time.Since(decided))

		c, err := ls.consumer(ctx, l)
		if apiErr := (*jetstream.APIError)(nil); errors.As(err, &apiErr) {
			// The server refuses this lane (its consumer limit reached, a
			// configuration it rejects): the others must not wait for it.
			ls.setAside(l, err)
			continue
		}
		if err != nil {
			return taken, fetched, err
		}
		asked := ls.w.now()
		got, pending, err := fetch(c, k, capped, func(msg jetstream.Msg) { start(msg, asked) })
		taken += got
		if err != nil && token == legacyLane {
			err = ls.w.maybeRecreateConsumer(ctx, err)
			ls.mu.Lock()
			l.consumer = ls.w.assets.Consumer
			ls.mu.Unlock()
		}
		if err != nil && (errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, nats.ErrNoResponders)) {
			// Deleted by the server for idling, or by an operator: made
			// again at the lane's next turn.
			ls.mu.Lock()
			l.consumer = nil
			ls.mu.Unlock()
			ls.w.log.Info("tenant's consumer was gone; making it again", "consumer", consumerName(l.key))
			continue
		}
		fetched = fetched || err == nil
		ls.mu.Lock()
		if got > 0 {
			ls.flows.Charge(token, float64(got))
		}
		if (got < k || pending == 0) && l.hints == hints {
			ls.dry(l)
			if got == 0 && err == nil && l.rechecked != hints {
				// Asked on a hint and found empty: another worker took the
				// request, or the consumer has not counted it yet. One more
				// look settles which; the recheck counts as no hint.
				l.rechecked = hints
				key := l.key
				time.AfterFunc(recheckAfter, func() { ls.recheck(key) })
			}
		}
		ls.mu.Unlock()
		if err != nil {
			return taken, fetched, err
		}
	}
	return taken, fetched, nil
}

// consumer returns the lane's consumer, creating it when this worker has
// none (the legacy lane's is the one Setup made).
func (ls *lanes) consumer(ctx context.Context, l *lane) (jetstream.Consumer, error) {
	ls.mu.Lock()
	c := l.consumer
	ls.mu.Unlock()
	if c != nil {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, natsOpTimeout)
	defer cancel()
	c, err := ls.makeConsumer(ctx, l.key)
	if apiErr := (*jetstream.APIError)(nil); errors.As(err, &apiErr) && apiErr.ErrorCode == errWorkQueueOverlap {
		// The shared consumer takes every request again: a worker of an
		// earlier version set it so at its start. Narrowed back, the
		// lane can be made (and that worker takes only old-form
		// requests from then on).
		ls.w.log.Warn("the shared consumer takes every tenant's requests (set by a worker of an earlier version?); narrowing it again", "consumer", jobs.ConsumerWorkers)
		if err = ls.w.assets.RestoreConsumer(ctx, ls.w.js); err == nil {
			c, err = ls.makeConsumer(ctx, l.key)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", consumerName(l.key), err)
	}
	ls.mu.Lock()
	l.consumer = c
	if l.refusals > 0 {
		ls.w.log.Info("a tenant's consumer refused before was made", "consumer", consumerName(l.key), "refusals", l.refusals)
		l.refusals = 0
	}
	ls.mu.Unlock()
	return c, nil
}

// errWorkQueueOverlap is the JetStream error code of a consumer whose
// filter overlaps another's on a work queue.
const errWorkQueueOverlap = 10100

// makeConsumer creates or updates lane k's consumer.
func (ls *lanes) makeConsumer(ctx context.Context, k laneKey) (jetstream.Consumer, error) {
	if k.batch {
		return ls.w.assets.BatchConsumer(ctx, ls.w.js, k.token, ls.w.cfg.TenantMaxRunning[k.token])
	}
	return ls.w.assets.TenantConsumer(ctx, ls.w.js, k.token, ls.w.cfg.TenantMaxRunning[k.token])
}

func consumerName(k laneKey) string {
	switch {
	case k.token == legacyLane:
		return jobs.ConsumerWorkers
	case k.batch:
		return jobs.BatchConsumer(k.token)
	}
	return jobs.TenantConsumer(k.token)
}

// cappedWait bounds a fetch from a capped lane (see fetch).
const cappedWait = 20 * time.Millisecond

// fetch fetches up to k requests that are waiting now, and returns how
// many came and how many the consumer had left after the last one (-1
// when none came). A lane with a running cap (its consumer's
// MaxAckPending) is asked for one request with a short expiry instead of
// no_wait: a no_wait pull that meets the cap gets no answer from the
// server, and the client would wait a second for it, holding up every
// other lane.
func fetch(c jetstream.Consumer, k int, capped bool, start func(jetstream.Msg)) (got int, pending int64, err error) {
	var batch jetstream.MessageBatch
	if capped {
		batch, err = c.Fetch(1, jetstream.FetchMaxWait(cappedWait))
	} else {
		batch, err = c.FetchNoWait(k)
	}
	if err != nil {
		return 0, -1, err
	}
	pending = -1
	for msg := range batch.Messages() {
		got++
		if meta, err := msg.Metadata(); err == nil {
			pending = int64(meta.NumPending)
		}
		start(msg)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
		return got, pending, err
	}
	return got, pending, nil
}

// rescan finds the lanes with requests waiting that no hint announced,
// and reports each lane's backlog. It reads every consumer of the requests
// stream (their pending and in-flight counts), and the stream's subjects
// only when the stream holds requests no consumer accounts for: a tenant
// whose consumer does not exist yet, or does no longer.
func (ls *lanes) rescan(ctx context.Context) (backlog, error) {
	var b backlog
	b.tenants = map[string]tenantBacklog{}
	infos := ls.w.assets.Requests.ListConsumers(ctx)
	counted := uint64(0)
	covered := map[laneKey]bool{}
	for ci := range infos.Info() {
		counted += ci.NumPending + uint64(ci.NumAckPending)
		b.pending += ci.NumPending
		b.inFlight += uint64(ci.NumAckPending)
		k, ok := laneOfConsumer(ci)
		if !ok {
			continue
		}
		covered[k] = true
		// A request waiting for redelivery (its lease lapsed with its
		// worker) counts as in flight, not pending: a lane with anything
		// unsettled is asked once, at the cost of one empty fetch when
		// its requests are all running.
		if ci.NumPending > 0 || ci.NumAckPending > 0 {
			ls.hint(k)
		}
		if k.token != legacyLane && ci.NumPending+uint64(ci.NumAckPending) > 0 {
			t := b.tenants[k.token]
			t.waiting += ci.NumPending
			t.running += uint64(ci.NumAckPending)
			b.tenants[k.token] = t
		}
	}
	if err := infos.Err(); err != nil {
		return b, err
	}
	si, err := ls.w.assets.Requests.Info(ctx)
	if err != nil {
		return b, err
	}
	b.stored = si.State.Msgs
	b.first = si.State.FirstTime
	if si.State.Msgs <= counted {
		return b, nil
	}
	// Requests no consumer covers: name their tenants from the subjects.
	si, err = ls.w.assets.Requests.Info(ctx, jetstream.WithSubjectFilter(jobs.AllRequests))
	if err != nil {
		return b, err
	}
	seen := map[laneKey]bool{}
	for subject, n := range si.State.Subjects {
		k := ls.laneOf(subject)
		if !seen[k] {
			seen[k] = true
			ls.hint(k)
		}
		if !covered[k] && k.token != legacyLane {
			t := b.tenants[k.token]
			t.waiting += n
			b.tenants[k.token] = t
		}
	}
	b.pending += si.State.Msgs - counted
	return b, nil
}

// laneOfConsumer is the lane a consumer of the requests stream serves
// (legacyLane's for the shared one); ok is false for a consumer that is
// none of deployq's.
func laneOfConsumer(ci *jetstream.ConsumerInfo) (laneKey, bool) {
	switch {
	case ci.Name == jobs.ConsumerWorkers:
		return laneKey{token: legacyLane}, true
	case jobs.IsTenantConsumer(ci.Name):
		token, batch, ok := jobs.RequestLane(strings.TrimSuffix(ci.Config.FilterSubject, "*") + "x")
		return laneKey{token, batch}, ok
	}
	return laneKey{}, false
}

// backlog is what a rescan counted of the requests stream.
type backlog struct {
	pending  uint64 // waiting for a worker
	inFlight uint64 // delivered, not settled
	stored   uint64 // in the stream
	first    time.Time
	tenants  map[string]tenantBacklog
}

type tenantBacklog struct{ waiting, running uint64 }
