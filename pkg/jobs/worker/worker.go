package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures a worker pool.
type Config struct {
	// Concurrency is the number of jobs run at once. Defaults to 16.
	Concurrency int
	// Owner identifies this worker in checkpoints and logs.
	// Defaults to hostname-pid.
	Owner string
	// MaxAttempts caps failed attempts of each step (so a job fails after
	// at most steps × MaxAttempts); rate-limit waits do not count.
	// Defaults to 5.
	MaxAttempts int
	// NewBackOff returns the retry schedule of one job's transient errors.
	// Defaults to exponential from 1 s to 1 min with ±50 % jitter.
	NewBackOff func() backoff.BackOff
	// MaxRateLimitWait caps one wait on a Retry-After or reset: an absurd
	// announcement (hours) must not park a job for that long. Defaults to 15 min.
	MaxRateLimitWait time.Duration
	// MaxBuildsFullWait bounds how long one job waits, in all, for the
	// team's concurrent builds to free a slot (429 builds_rate_limited):
	// past it the job fails with that code, for a person to look at what
	// holds the builds. The waits spend no attempt. Defaults to 30 min.
	MaxBuildsFullWait time.Duration
	// HeartbeatInterval is how often an in-flight job extends its lease.
	// Defaults to a third of the consumer's AckWait.
	HeartbeatInterval time.Duration
	// ShutdownGrace is how long in-flight jobs may go on after shutdown
	// starts before they are handed back with their checkpoints.
	// Defaults to 30 s.
	ShutdownGrace time.Duration
	// PullWait is how long the worker waits, with nothing to take, for
	// news of a request before it looks again, and after a failed fetch
	// before the next. Defaults to 2 s.
	PullWait time.Duration
	// CredentialsProbeInterval is how often a worker whose token was
	// refused checks whether it works again. Defaults to 30 s.
	CredentialsProbeInterval time.Duration
	// BacklogInterval is how often the worker rescans the requests
	// stream's consumers (finding requests no hint announced, such as a
	// redelivery after a lapsed lease) and refreshes the backlog metrics.
	// Defaults to 10 s.
	BacklogInterval time.Duration
	// NoProgressEvents publishes no step_completed events: each request
	// gets its terminal event only. For platforms that never show a
	// deploy's progress: it spares eight of the nine event messages of a
	// job, and about a fifth of the queue's own CPU (docs/BENCHMARKS.md).
	// Defaults to false.
	NoProgressEvents bool
	// TenantWeights are the tenants' weights in the API budget's waiting
	// lines: while several tenants' calls wait for one endpoint, each goes
	// in proportion to its weight. Tenants absent weigh
	// fair.DefaultWeight (1). Every worker of a fleet should be given the
	// same weights. Defaults to none: equal shares.
	TenantWeights map[string]float64
	// TenantMaxRunning caps, per tenant, its requests running at once
	// across the fleet (its consumer's MaxAckPending, which the server
	// enforces for every worker): a tenant at its cap waits, its requests
	// in the stream, while others take the free slots. Every worker of a
	// fleet should be given the same; a change takes effect when a worker
	// next makes the tenant's consumer (at its start, or after the
	// consumer idled out). Defaults to none: no cap but the fleet's.
	TenantMaxRunning map[string]int
	// Quotas are the tenants' quotas (deploys per day, say), counted for
	// the fleet in the budget's store: a request past its tenant's quota
	// waits until the quota allows it, or is rejected when it asked for
	// that (quota.go). Defaults to none: no tenant has a quota.
	Quotas *budget.Quotas
	// Clock tells the time: of checkpoints, apps' versions, claims and
	// expiry. Defaults to time.Now; a test moves an app a day on with it.
	Clock func() time.Time
	// ClaimPage is the page claim URLs point at. Defaults to Vercel's
	// (vercel.ClaimURLBase); a worker against the simulator points them
	// at the simulator's own page (vercelsim.ClaimPagePath), so that no
	// simulated claim URL passes for a real one.
	ClaimPage string
	// Apps configures apps' domains, claims and expiry (apps.go,
	// upkeep.go).
	Apps AppsConfig
	// Limits bound requests. Defaults to DefaultLimits().
	Limits jobs.Limits
	// Sources configures tarball clean-up.
	Sources JanitorConfig
	// Logger receives structured logs. Defaults to slog.Default().
	Logger *slog.Logger
	// Metrics records the worker's metrics. Defaults to none.
	Metrics *metrics.Metrics
}

func (c Config) withDefaults(ackWait time.Duration) Config {
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Owner == "" {
		host, _ := os.Hostname()
		c.Owner = host + "-" + strconv.Itoa(os.Getpid())
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	c.Apps = c.Apps.withDefaults()
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.ClaimPage == "" {
		c.ClaimPage = vercel.ClaimURLBase
	}
	if c.NewBackOff == nil {
		c.NewBackOff = func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval = time.Second
			b.MaxInterval = time.Minute
			b.RandomizationFactor = 0.5
			b.MaxElapsedTime = 0 // attempts are capped by MaxAttempts instead
			return b
		}
	}
	if c.MaxRateLimitWait <= 0 {
		c.MaxRateLimitWait = 15 * time.Minute
	}
	if c.MaxBuildsFullWait <= 0 {
		c.MaxBuildsFullWait = 30 * time.Minute
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = ackWait / 3
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.PullWait <= 0 {
		c.PullWait = 2 * time.Second
	}
	if c.CredentialsProbeInterval <= 0 {
		c.CredentialsProbeInterval = 30 * time.Second
	}
	if c.BacklogInterval <= 0 {
		c.BacklogInterval = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Worker pulls deploy requests from the tenants' consumers in fair order
// (lanes.go) and runs each through the pipeline with bounded concurrency.
// Many workers, in one process or many, share the consumers; JetStream
// gives each request to one of them at a time.
type Worker struct {
	js       jetstream.JetStream
	assets   *jobs.Assets
	pipeline *Pipeline
	cfg      Config
	log      *slog.Logger
	m        *metrics.Metrics
	now      func() time.Time

	running      atomic.Bool
	shuttingDown atomic.Bool
	// pulling is false while fetching or rescanning fails (the stream or
	// a consumer has no leader, was deleted, is unreachable).
	pulling  atomic.Bool
	creds    credentialGate
	inflight inflight
	leases   leaseKeeper
	// lanes is the fair dispatch of Run (set once, before any job).
	lanes *lanes
}

// New returns a worker over the assets Setup created.
func New(js jetstream.JetStream, assets *jobs.Assets, p *Pipeline, cfg Config) (*Worker, error) {
	if js == nil || assets == nil || p == nil {
		return nil, errors.New("worker: New needs a JetStream handle, assets and a pipeline")
	}
	cfg = cfg.withDefaults(assets.Config.AckWait)
	if cfg.HeartbeatInterval >= assets.Config.AckWait {
		return nil, fmt.Errorf("worker: HeartbeatInterval %s must be shorter than AckWait %s", cfg.HeartbeatInterval, assets.Config.AckWait)
	}
	w := &Worker{
		js: js, assets: assets, pipeline: p, cfg: cfg,
		log: cfg.Logger, m: cfg.Metrics, now: cfg.Clock,
	}
	w.creds.init()
	w.m.DeclareDeadLetterReasons(string(jobs.DLQReasonRejected), string(jobs.DLQReasonFailed), string(jobs.DLQReasonMaxDeliveries))
	for _, t := range cfg.Quotas.Tenants() {
		for _, c := range cfg.Quotas.Quota(t) {
			w.m.QuotaLimit(t, c.WindowString(), c.Requests)
		}
	}
	return w, nil
}

// Ready reports whether the worker takes work: running, not shutting
// down, pulling from the requests stream, and its API credentials not
// refused.
func (w *Worker) Ready() bool {
	return w.running.Load() && !w.shuttingDown.Load() && w.pulling.Load() && w.creds.ok()
}

// Pulling reports whether the last fetch or rescan of the requests
// stream worked.
func (w *Worker) Pulling() bool { return w.pulling.Load() }

// CredentialsOK reports whether the API accepted the worker's token the
// last time it was used.
func (w *Worker) CredentialsOK() bool { return w.creds.ok() }

// errShutdown is the cause of job contexts cancelled when the grace
// period ends: their jobs are handed back, not failed.
var errShutdown = errors.New("worker shutting down")

// Run takes work until ctx ends, then stops pulling, lets in-flight jobs
// finish within ShutdownGrace and hands the rest back. It returns nil after
// a clean shutdown.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("worker: Worker.Run called twice")
	}
	defer w.running.Store(false)
	w.m.SetConcurrency(w.cfg.Concurrency)
	// Not ready before the credentials were asked about: a worker whose
	// token the API refuses must never report ready, even for a moment.
	w.checkCredentials(ctx)
	w.pulling.Store(true) // Setup bound the consumer; the first fetch tells
	defer w.pulling.Store(false)
	w.m.SetReady(w.creds.ok())
	defer w.m.SetReady(false)

	// Jobs outlive ctx by the grace period, so they get their own context.
	jobCtx, stopJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopJobs(nil)
	// Heartbeats too: they run until the last job has ended.
	hbCtx, stopHeartbeats := context.WithCancel(context.WithoutCancel(ctx))
	var heartbeats sync.WaitGroup
	heartbeats.Go(func() { w.leases.run(hbCtx, w.cfg.HeartbeatInterval) })
	defer func() { stopHeartbeats(); heartbeats.Wait() }()

	cancels, err := w.subscribeCancels()
	if err != nil {
		return fmt.Errorf("subscribe to cancel notices: %w", err)
	}
	defer func() { _ = cancels.Unsubscribe() }()
	logFollows, err := w.subscribeLogFollows()
	if err != nil {
		return fmt.Errorf("subscribe to build log followers: %w", err)
	}
	defer func() { _ = logFollows.Unsubscribe() }()
	advisories, err := w.subscribeMaxDeliveries()
	if err != nil {
		return fmt.Errorf("subscribe to max-deliveries advisories: %w", err)
	}
	defer func() { _ = advisories.Unsubscribe() }()
	lanes := newLanes(w)
	w.lanes = lanes
	unlisten, err := lanes.listen()
	if err != nil {
		return fmt.Errorf("subscribe to requests: %w", err)
	}
	defer unlisten()
	// The requests queued before this worker listened.
	w.rescan(ctx, lanes)

	claims, err := w.subscribeClaims(jobCtx)
	if err != nil {
		return fmt.Errorf("subscribe to claim refreshes: %w", err)
	}
	defer func() { _ = claims.Unsubscribe() }()

	var bg sync.WaitGroup
	bg.Go(func() { w.runSourceJanitor(ctx) })
	bg.Go(func() { w.runUpkeep(ctx) })
	bg.Go(func() { w.watchBacklog(ctx, lanes) })
	bg.Go(func() { w.probeCredentials(ctx) })

	slots := make(chan struct{}, w.cfg.Concurrency)
	var jobs sync.WaitGroup
	for ctx.Err() == nil {
		if !w.creds.waitOK(ctx) {
			break
		}
		n := acquireSlots(ctx, slots, min(w.cfg.Concurrency, maxFetchBatch))
		if n == 0 {
			break
		}
		// asked is taken before each pull request goes out: the server
		// delivers every message of a fetch after it, so no message can
		// be redelivered to another worker before asked+AckWait
		// (leaseFresh).
		got, fetched, err := lanes.take(ctx, n, func(msg jetstream.Msg, asked time.Time) {
			s := &seat{slots: slots, stop: ctx.Done(), taken: true}
			jobs.Go(func() {
				defer s.leave()
				w.handle(jobCtx, msg, asked, s)
				// A capped tenant's lane may have room again.
				if token, ok := w.cappedLane(msg.Subject()); ok {
					lanes.recheck(token)
				}
			})
		})
		for range n - got {
			<-slots
		}
		if err != nil && ctx.Err() == nil {
			w.log.Warn("fetch requests failed", "err", err)
			w.pulling.Store(false)
			w.m.SetReady(false)
			if clock.Sleep(ctx, w.cfg.PullWait) != nil {
				break
			}
			continue
		}
		if fetched {
			w.pulling.Store(true)
			w.m.SetReady(w.Ready())
		}
		if got == 0 {
			// No lane this worker knows of has requests: wait for a
			// request's hint, or a rescan's.
			select {
			case <-lanes.wake:
			case <-ctx.Done():
			case <-time.After(w.cfg.PullWait):
			}
		}
	}

	w.shuttingDown.Store(true)
	w.m.SetReady(false)
	done := make(chan struct{})
	go func() { jobs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownGrace):
		w.log.Warn("shutdown grace period over: handing back in-flight jobs", "grace", w.cfg.ShutdownGrace)
		stopJobs(errShutdown)
		<-done
	}
	bg.Wait()
	return nil
}

// maxFetchBatch caps the requests one fetch asks for: a worker starting
// with ten thousand free slots takes them in batches that each arrive at
// once, rather than one pull the server spends seconds filling while the
// messages' leases already run.
const maxFetchBatch = 256

// acquireSlots blocks for one free slot, then takes as many more as are
// free, so a fetch asks for exactly the work the pool can start now:
// buffered requests would burn their lease while waiting for a slot.
func acquireSlots(ctx context.Context, slots chan struct{}, max int) int {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < max {
		select {
		case slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

// maybeRecreateConsumer puts the shared consumer (of requests in the old
// subject form) back when it was deleted
// (an operator's mistake, a restored cluster): nats.go would otherwise
// keep pulling from nothing. Once the consumer is gone a pull request has
// nobody to answer it, so "no responders" is checked too: without that, a
// worker whose first attempt to recreate it failed (the server may still
// be deleting it) would never try again.
func (w *Worker) maybeRecreateConsumer(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
	case errors.Is(err, nats.ErrNoResponders):
		if _, cerr := w.js.Consumer(ctx, jobs.StreamRequests, jobs.ConsumerWorkers); !errors.Is(cerr, jetstream.ErrConsumerNotFound) {
			return err // it is there, or the stream is not (Setup puts both back)
		}
	default:
		return err
	}
	if cerr := w.assets.RestoreConsumer(ctx, w.js); cerr != nil {
		return fmt.Errorf("consumer gone and not recreated: %w", cerr)
	}
	w.log.Warn("shared consumer was deleted; recreated it", "consumer", jobs.ConsumerWorkers)
	return nil
}
