package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deployq/deployq/internal/streamget"
	"github.com/nats-io/nats.go/jetstream"
)

// SetupConfig shapes the streams, buckets and consumer deployq uses.
type SetupConfig struct {
	// Replicas of every stream and bucket: 1 on a single server, 3 in a
	// cluster. Defaults to 1.
	Replicas int
	// DuplicateWindow is how long the requests stream remembers a
	// Nats-Msg-Id. deployq's own publishes deduplicate by subject instead
	// (see RequestSubject); the window only serves producers that set
	// the header. Defaults to 1 h.
	DuplicateWindow time.Duration
	// MaxRequestBytes is the largest request body the requests stream
	// stores; a larger publish is refused by the stream, so it never
	// reaches a worker. It must be at least the workers' and producers'
	// Limits.MaxRequestBytes. Defaults to DefaultLimits().MaxRequestBytes.
	MaxRequestBytes int
	// EventsMaxAge is how long events are kept. Defaults to 7 days.
	EventsMaxAge time.Duration
	// DLQMaxAge is how long dead letters are kept. Defaults to 30 days.
	DLQMaxAge time.Duration
	// JobsMaxAge is how long job checkpoints are kept: the horizon within
	// which a late duplicate of a finished request returns its outcome
	// instead of deploying again. Defaults to 30 days.
	JobsMaxAge time.Duration
	// SourcesMaxAge is a backstop on tarball lifetime; tarballs are normally
	// deleted soon after their last job ends. Defaults to 7 days.
	SourcesMaxAge time.Duration
	// AckWait is the lease of a delivered request; workers heartbeat well
	// within it. Defaults to 60 s.
	AckWait time.Duration
	// MaxDeliver caps deliveries of one request, a safety net against a
	// request that crashes workers. Defaults to 20.
	MaxDeliver int
	// MaxAckPending caps requests in flight across all workers, per
	// tenant (each tenant's requests have a consumer of their own). It
	// must exceed the fleet's total concurrency. Defaults to 10000.
	MaxAckPending int
	// ArrivalOrder makes the shared consumer take every tenant's requests,
	// in the order they arrived, and workers take them from it alone: how
	// deployq dispatched before each tenant had a consumer of its own.
	// For comparisons (bench fair), not for production: one tenant's
	// burst holds up every other tenant's requests. Defaults to false.
	ArrivalOrder bool
	// MaxLanes caps the tenants' consumers the requests stream holds at
	// once: tenants with requests in the last LaneIdle. A tenant past it
	// gets no consumer, and its requests wait in the stream until lanes
	// idle out (workers log it). In a cluster each consumer is a Raft
	// group of its own. Defaults to 10000 (NATS itself caps a stream at
	// 1000 consumers unless told otherwise).
	MaxLanes int
	// LaneIdle is how long a tenant's consumer lives without a worker
	// asking it for requests; the server deletes it then, and a worker
	// creates it again when the tenant next has work. Defaults to 1 h.
	LaneIdle time.Duration
}

func (c SetupConfig) withDefaults() SetupConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	def(&c.DuplicateWindow, time.Hour)
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultLimits().MaxRequestBytes
	}
	def(&c.EventsMaxAge, 7*24*time.Hour)
	def(&c.DLQMaxAge, 30*24*time.Hour)
	def(&c.JobsMaxAge, 30*24*time.Hour)
	def(&c.SourcesMaxAge, 7*24*time.Hour)
	def(&c.AckWait, 60*time.Second)
	def(&c.LaneIdle, time.Hour)
	if c.MaxLanes <= 0 {
		c.MaxLanes = 10000
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 20
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 10000
	}
	return c
}

// Assets are the JetStream handles a worker uses.
type Assets struct {
	Requests   jetstream.Stream
	Events     jetstream.Stream
	DLQ        jetstream.Stream
	Consumer   jetstream.Consumer
	Jobs       jetstream.KeyValue
	SourceRefs jetstream.KeyValue
	Uploads    jetstream.KeyValue
	BuildTimes jetstream.KeyValue
	Apps       jetstream.KeyValue
	// Sources reads from the stream leader.
	Sources *SourceStore
	Config  SetupConfig
}

// Setup creates or updates every stream, bucket and the shared consumer
// (the tenants' consumers are made as tenants come: TenantConsumer).
// It is idempotent, so every worker calls it at start; workers of one fleet
// must agree on cfg or they will keep rewriting each other's settings.
func Setup(ctx context.Context, js jetstream.JetStream, cfg SetupConfig) (*Assets, error) {
	cfg = cfg.withDefaults()
	a := &Assets{Config: cfg}
	var err error
	if a.Requests, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamRequests,
		Description: "deployq deploy requests, consumed once by the worker fleet",
		// deploy.requests.<tenant>.<id> and, for batch requests,
		// deploy.requests.<tenant>.batch.<id> are the contract; the
		// stream also takes deploy.requests.<tenant>, the form of
		// earlier versions, so that such a message is rejected with a
		// reason instead of the publisher hearing "no responders".
		Subjects:  []string{requestsPrefix + "*", requestsPrefix + "*.*", requestsPrefix + "*" + batchInfix + "*"},
		Retention: jetstream.WorkQueuePolicy,
		// Headers count too: room for the ones a producer may set.
		MaxMsgSize: int32(cfg.MaxRequestBytes + requestHeaderRoom),
		Storage:    jetstream.FileStorage,
		Replicas:   cfg.Replicas,
		Duplicates: cfg.DuplicateWindow,
		Discard:    jetstream.DiscardOld,
		// The tenants' consumers and the shared one.
		MaxConsumers: cfg.MaxLanes + 1,
		// Each stored request is announced (headers only) on Queued:
		// workers learn which tenants have work without reading it, and
		// only once it can be fetched.
		RePublish: &jetstream.RePublish{Source: AllRequests, Destination: "deploy.queued.>", HeadersOnly: true},
	}); err != nil {
		return nil, setupErr("stream "+StreamRequests, err)
	}
	if a.Events, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamEvents,
		Description: "deployq progress and result events",
		Subjects:    []string{eventsPrefix + "*.*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.EventsMaxAge,
		Duplicates:  10 * time.Minute,
		// Client.Status reads a request's last event. A direct get names
		// the subject in the request subject, so a tenant's credentials
		// can allow it for that tenant's events alone; the leader read
		// (MSG.GET) takes any subject in its body.
		AllowDirect: true,
	}); err != nil {
		return nil, setupErr("stream "+StreamEvents, err)
	}
	if a.DLQ, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamDLQ,
		Description: "deployq dead letters: the request, every attempt's error and the reason",
		Subjects:    []string{dlqPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.DLQMaxAge,
		Duplicates:  10 * time.Minute,
	}); err != nil {
		return nil, setupErr("stream "+StreamDLQ, err)
	}
	if a.Consumer, err = js.CreateOrUpdateConsumer(ctx, StreamRequests, consumerConfig(cfg)); err != nil {
		return nil, setupErr("consumer "+ConsumerWorkers, err)
	}
	if a.Jobs, err = ensureLeaderReadKV(ctx, js, jetstream.KeyValueConfig{
		Bucket: BucketJobs, Description: "deployq job checkpoints",
		TTL: cfg.JobsMaxAge, Replicas: cfg.Replicas, Storage: jetstream.FileStorage,
	}); err != nil {
		return nil, err
	}
	if a.SourceRefs, err = ensureKV(ctx, js, jetstream.KeyValueConfig{
		Bucket: BucketSourceRefs, Description: "deployq: requests still needing a source tarball",
		TTL: cfg.SourcesMaxAge, Replicas: cfg.Replicas, Storage: jetstream.FileStorage,
	}); err != nil {
		return nil, err
	}
	if a.Uploads, err = ensureLeaderReadKV(ctx, js, jetstream.KeyValueConfig{
		Bucket: BucketUploads, Description: "deployq: tarballs each Vercel team already has",
		TTL: cfg.JobsMaxAge, Replicas: cfg.Replicas, Storage: jetstream.FileStorage,
	}); err != nil {
		return nil, err
	}
	// Apps live until they are claimed or expire; their records stay
	// (an expired app must still refuse new versions), so the bucket
	// keeps them without an age limit.
	if a.Apps, err = ensureLeaderReadKV(ctx, js, jetstream.KeyValueConfig{
		Bucket: BucketApps, Description: "deployq: apps (project, database, versions, claim, expiry)",
		History: 1, Replicas: cfg.Replicas, Storage: jetstream.FileStorage,
	}); err != nil {
		return nil, err
	}
	// One entry of about a hundred bytes per Vercel team, overwritten in
	// place: History 1, and bounds that only stop a runaway writer.
	if a.BuildTimes, err = ensureKV(ctx, js, jetstream.KeyValueConfig{
		Bucket: BucketBuildTimes, Description: "deployq: learned build time of each Vercel team",
		History: 1, TTL: cfg.JobsMaxAge, MaxValueSize: 1 << 10, MaxBytes: 1 << 20,
		Replicas: cfg.Replicas, Storage: jetstream.FileStorage,
	}); err != nil {
		return nil, err
	}
	if _, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamSources,
		Description: "deployq source tarballs: deploy.sources.<tenant>.<sha1>.<chunk|meta>",
		Subjects:    []string{sourcesPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.SourcesMaxAge,
		// A tarball written again replaces its chunks in place: no
		// producer needs to purge, which a tenant's user may not.
		MaxMsgsPerSubject: 1,
		MaxMsgSize:        int32(SourceChunkSize + requestHeaderRoom),
		// Producers look their own tarballs up with direct gets, which a
		// permission can scope to a tenant's subjects.
		AllowDirect: true,
	}); err != nil {
		return nil, setupErr("stream "+StreamSources, err)
	}
	a.Sources = newLeaderSourceStore(js)
	return a, nil
}

// requestHeaderRoom is what a request message may carry in headers on
// top of its body.
const requestHeaderRoom = 4 << 10

// RestoreConsumer creates the shared consumer again, as Setup defines it,
// after it was deleted (an operator's mistake, a restored cluster), and
// binds Consumer to it.
func (a *Assets) RestoreConsumer(ctx context.Context, js jetstream.JetStream) error {
	c, err := js.CreateOrUpdateConsumer(ctx, StreamRequests, consumerConfig(a.Config))
	if err != nil {
		return err
	}
	a.Consumer = c
	return nil
}

// TenantConsumer creates or updates the consumer of the requests
// published under a tenant token (TenantConsumer names it) and returns
// it. It is idempotent; workers call it when they first see a tenant's
// request, and again when the server deleted the consumer for idling.
// maxRunning, when positive, caps the tenant's requests delivered and not
// yet settled across the fleet (its consumer's MaxAckPending: the server
// enforces it for every worker at once); otherwise
// SetupConfig.MaxAckPending applies. Workers of one fleet must agree on
// it, or each rewrites the cap when it makes the consumer.
func (a *Assets) TenantConsumer(ctx context.Context, js jetstream.JetStream, token string, maxRunning int) (jetstream.Consumer, error) {
	return a.laneConsumer(ctx, js, TenantConsumer(token), TenantRequests(token), "deployq requests of one tenant", maxRunning)
}

// BatchConsumer is TenantConsumer for the tenant's batch requests
// (TenantBatchRequests). A tenant's two lanes are two consumers, so a
// running cap holds for each of them.
func (a *Assets) BatchConsumer(ctx context.Context, js jetstream.JetStream, token string, maxRunning int) (jetstream.Consumer, error) {
	return a.laneConsumer(ctx, js, BatchConsumer(token), TenantBatchRequests(token), "deployq batch requests of one tenant", maxRunning)
}

func (a *Assets) laneConsumer(ctx context.Context, js jetstream.JetStream, name, filter, description string, maxRunning int) (jetstream.Consumer, error) {
	cfg := consumerConfig(a.Config)
	if maxRunning > 0 {
		cfg.MaxAckPending = maxRunning
	}
	cfg.Durable = name
	cfg.Description = description
	cfg.FilterSubject = filter
	cfg.InactiveThreshold = a.Config.LaneIdle
	return js.CreateOrUpdateConsumer(ctx, StreamRequests, cfg)
}

// sharedFilter is what the shared consumer takes: the old subject form,
// or every request in ArrivalOrder.
func sharedFilter(cfg SetupConfig) string {
	if cfg.ArrivalOrder {
		return AllRequests
	}
	return requestsPrefix + "*"
}

func consumerConfig(cfg SetupConfig) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:     ConsumerWorkers,
		Description: "deployq requests on deploy.requests.<tenant>, the form of earlier versions, to reject",
		// Not deploy.requests.>: a work queue refuses consumers whose
		// filters overlap, and each tenant's requests have their own
		// (Assets.TenantConsumer). An earlier version's consumer is
		// narrowed to this when a worker of this version starts.
		FilterSubject: sharedFilter(cfg),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// No BackOff: it silently replaces AckWait and shrinks the lease
		// that heartbeats extend. Retries wait in-process instead.
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
	}
}

func ensureKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, setupErr("bucket "+cfg.Bucket, err)
	}
	return kv, nil
}

// ensureLeaderReadKV is ensureKV for buckets workers read right before a
// compare-and-set (checkpoints and upload claims): the handle it returns
// reads from the stream leader (see leaderKV). The bucket itself keeps
// direct gets, which per-tenant producer credentials need; a bucket an
// earlier version created without them gets them back.
func ensureLeaderReadKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := ensureKV(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, "KV_"+cfg.Bucket)
	if err != nil {
		return nil, setupErr("bucket "+cfg.Bucket, err)
	}
	if sc := s.CachedInfo().Config; !sc.AllowDirect {
		sc.AllowDirect = true
		if _, err := js.UpdateStream(ctx, sc); err != nil {
			return nil, setupErr("bucket "+cfg.Bucket+" (direct gets)", err)
		}
	}
	return streamget.NewLeaderKV(js, kv), nil
}

// SetupError reports which asset could not be created or updated.
type SetupError struct {
	Asset string
	Err   error
}

func (e *SetupError) Error() string { return "set up " + e.Asset + ": " + e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

func setupErr(asset string, err error) error { return &SetupError{Asset: asset, Err: err} }

// errNotSetUp is returned by clients when the streams do not exist yet.
var errNotSetUp = errors.New("deployq streams are not set up: start a worker first (it creates them) or call jobs.Setup")

func bindErr(what string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("%s: %w", what, errNotSetUp)
	}
	return fmt.Errorf("%s: %w", what, err)
}
