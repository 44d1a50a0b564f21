package jobs

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deployq/deployq/internal/kvsubject"
	"github.com/deployq/deployq/internal/pubpipe"
	"github.com/deployq/deployq/internal/streamget"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClientConfig configures a producer client.
type ClientConfig struct {
	// Limits bound requests; they must not exceed the workers' limits.
	// Defaults to DefaultLimits().
	Limits Limits
	// SourceGrace must equal the workers' SourceJanitorConfig.Grace: a
	// tarball written less than half of it ago is not uploaded again.
	// Defaults to 10 min.
	SourceGrace time.Duration
	// Tenant, when set, is the tenant whose NATS user the client
	// connects as (deploy/nats): the client then uses only what such a
	// user may. It binds no stream (no STREAM.INFO, which would list
	// every tenant's subjects), reads checkpoints and events with direct
	// gets of the tenant's own subjects, follows events by subscription
	// (a tenant's user may create no consumer: a push consumer could
	// deliver into any subject of the account), submits for this tenant
	// only, and leaves Cancel, Replay and the DLQ to the admin user
	// (ErrAdminOnly). Defaults to "": an admin client.
	Tenant string
	// MaxPending is the chunk size of SubmitBatch and bounds what one
	// call has outstanding of each kind: checkpoint reads, reference puts
	// and request publishes waiting for their answer (256 was the fastest
	// of 64 to 1024 on 2 CPUs). The JetStream context has a bound of its
	// own on unanswered asynchronous publishes
	// (jetstream.WithPublishAsyncMaxPending, 4000 by default), shared by
	// everything publishing through it; a batch that finds it full waits
	// for its own answers first. Defaults to 256.
	MaxPending int
}

func (c ClientConfig) withDefaults() ClientConfig {
	c.Limits = c.Limits.WithDefaults()
	if c.SourceGrace <= 0 {
		c.SourceGrace = DefaultSourceGrace
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 256
	}
	return c
}

// Client submits deploy requests and follows their events. Other Go
// services import it to publish requests; cmd/enqueue is built on it.
type Client struct {
	js      jetstream.JetStream
	sources *SourceStore
	// refsPut is the subject prefix of a put into refs (see kvPutPrefix).
	refsPut string
	jobs    jetstream.KeyValue
	// jobsLeader reads checkpoints from the stream leader, for the
	// compare-and-set loops of Cancel and Replay (admin credentials);
	// Submit and Status read through jobs, with direct gets, which a
	// tenant's credentials allow for its own keys.
	jobsLeader jetstream.KeyValue
	events     jetstream.Stream
	dlq        jetstream.Stream
	requests   jetstream.Stream
	cfg        ClientConfig
	now        func() time.Time

	// stored remembers when tarballs this client saw in the store were
	// written (by the stream's clock), per tenant and SHA-1, so that a
	// tarball submitted again
	// within SourceGrace/2 needs no lookup: the same rule as the lookup's.
	storedMu sync.Mutex
	stored   map[string]time.Time
}

// maxStoredTarballs bounds Client.stored; past it the memory starts over.
const maxStoredTarballs = 4096

// ErrAdminOnly is returned by a tenant's client (ClientConfig.Tenant) for
// what only the admin user may do.
var ErrAdminOnly = errors.New("this needs the admin NATS user; a tenant's client cannot do it")

// NewClient binds to the streams and buckets a worker (or Setup) created.
// A tenant's client (ClientConfig.Tenant) binds nothing: see Tenant.
func NewClient(ctx context.Context, js jetstream.JetStream, cfg ClientConfig) (*Client, error) {
	c := &Client{js: js, cfg: cfg.withDefaults(), now: time.Now}
	c.sources = NewSourceStore(js)
	c.refsPut = "$KV." + BucketSourceRefs + "."
	if cfg.Tenant != "" {
		if !tenantPattern.MatchString(cfg.Tenant) {
			return nil, invalid("tenant", "ClientConfig.Tenant %q is not a tenant name", cfg.Tenant)
		}
		return c, nil
	}
	var err error
	if _, err = js.KeyValue(ctx, BucketSourceRefs); err != nil {
		return nil, bindErr("bucket "+BucketSourceRefs, err)
	}
	// The bucket's own configuration says where its puts go (a mirror
	// takes them on its origin's subjects).
	refsStream, err := js.Stream(ctx, "KV_"+BucketSourceRefs)
	if err != nil {
		return nil, bindErr("bucket "+BucketSourceRefs, err)
	}
	c.refsPut = kvsubject.PutPrefix(js.Options(), refsStream.CachedInfo().Config)
	if c.jobs, err = js.KeyValue(ctx, BucketJobs); err != nil {
		return nil, bindErr("bucket "+BucketJobs, err)
	}
	c.jobsLeader = streamget.NewLeaderKV(js, c.jobs)
	if c.events, err = js.Stream(ctx, StreamEvents); err != nil {
		return nil, bindErr("stream "+StreamEvents, err)
	}
	if c.dlq, err = js.Stream(ctx, StreamDLQ); err != nil {
		return nil, bindErr("stream "+StreamDLQ, err)
	}
	if c.requests, err = js.Stream(ctx, StreamRequests); err != nil {
		return nil, bindErr("stream "+StreamRequests, err)
	}
	return c, nil
}

// adminOnly refuses what a tenant's client may not do.
func (c *Client) adminOnly(what string) error {
	if c.cfg.Tenant != "" {
		return fmt.Errorf("%s: %w", what, ErrAdminOnly)
	}
	return nil
}

// forTenant checks (and for a tenant's client, fills in) the tenant a
// call is for.
func (c *Client) forTenant(tenant *string) error {
	switch {
	case c.cfg.Tenant == "":
	case *tenant == "":
		*tenant = c.cfg.Tenant
	case *tenant != c.cfg.Tenant:
		return invalid("tenant", "%q: this client acts for tenant %q", *tenant, c.cfg.Tenant)
	}
	return nil
}

// readState reads a checkpoint with a direct get of its key, which a
// tenant's user may make for its own keys; nil when there is none.
func (c *Client) readState(ctx context.Context, tenant, id string) (*JobState, error) {
	ctx, cancel := c.apiCtx(ctx)
	defer cancel()
	m, err := streamget.Direct(ctx, c.js.Conn(), "KV_"+BucketJobs, "$KV."+BucketJobs+"."+jobKey(tenant, id), jetstream.ErrKeyNotFound)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
		return nil, nil
	}
	var s JobState
	if err := json.Unmarshal(m.Data, &s); err != nil {
		return nil, fmt.Errorf("decode checkpoint: %w", err)
	}
	return &s, nil
}

// putRef and deleteRef write the refs bucket by publishing to its key
// subjects, as KeyValue.Put and Delete do, which needs no bucket handle.
func (c *Client) putRef(ctx context.Context, key string) error {
	_, err := c.js.Publish(ctx, c.refsPut+key, nil)
	return err
}

func (c *Client) deleteRef(ctx context.Context, key string) error {
	m := nats.NewMsg(c.refsPut + key)
	m.Header.Set("KV-Operation", "DEL")
	_, err := c.js.PublishMsg(ctx, m)
	return err
}

// apiCtx bounds a request made without a deadline, as nats.go does.
func (c *Client) apiCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.js.Options().DefaultTimeout)
}

// Submitted is the result of a submit.
type Submitted struct {
	ID      string
	Tenant  string
	Subject string
	// Sequence is the request's position in the requests stream (0 when
	// not published because the job already exists).
	Sequence uint64
	// Duplicate is true when the id was already submitted: nothing new
	// will run, and the existing job's events tell its outcome.
	Duplicate bool
	// Existing is the existing job's checkpoint when the id belongs to a
	// job that already started (a late retry), else nil.
	Existing *JobState
	// Run is the run the request starts: 1, or the replay's run number.
	Run int
}

// Submit stores the source tarball (once per content), then publishes the
// request. It fills in Version, a fresh ID when empty, and Source.
// Submitting the same id again never deploys twice.
//
// A request whose publish certainly failed (an error from the stream, no
// stream) releases its source reference; one whose answer did not come
// (ctx ended, the connection dropped) may be stored, and keeps it.
//
// Submit costs three round trips (the duplicate check, the source
// reference, the publish); to submit many requests of one tarball, use
// SubmitBatch, which pipelines them.
func (c *Client) Submit(ctx context.Context, req Request, tarball []byte) (*Submitted, error) {
	data, err := c.prepare(&req, sourceOf(tarball))
	if err != nil {
		return nil, err
	}
	out := submittedFor(&req)
	if st := c.existingJob(ctx, &req); st != nil {
		out.Duplicate, out.Existing = true, st
		return &out, nil
	}
	if err := c.storeSource(ctx, &req, tarball); err != nil {
		return nil, err
	}
	ack, err := c.js.PublishMsg(ctx, requestMsg(&req, data))
	if seq, taken := subjectTaken(err); taken {
		// A message of this id is queued already (an earlier attempt of
		// this submit): it keeps the reference.
		out.Sequence, out.Duplicate = seq, true
		return &out, nil
	}
	if err != nil {
		if !pubpipe.MayBeStored(err) {
			c.releaseRefs(ctx, []string{SourceRefKey(&req)})
		}
		return nil, fmt.Errorf("publish request %s: %w", req.ID, err)
	}
	out.Sequence = ack.Sequence
	return &out, nil
}

// requestMsg is the message that publishes req: on its own subject, and
// stored only if no message of the same id is queued (Submit's
// deduplication; see RequestSubject).
func requestMsg(req *Request, data []byte) *nats.Msg {
	m := &nats.Msg{Subject: SubjectFor(req), Data: data, Header: make(nats.Header, 1)}
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	return m
}

// subjectTaken reports whether a request publish was refused because a
// message of the same id is queued, and that message's sequence when
// the stream named it.
func subjectTaken(err error) (uint64, bool) {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || (apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence &&
		apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return 0, false
	}
	// "wrong last sequence: 42"
	_, n, _ := strings.Cut(apiErr.Description, ": ")
	seq, _ := strconv.ParseUint(strings.TrimSpace(n), 10, 64)
	return seq, true
}

// sourceOf is the reference to tarball in the sources store.
func sourceOf(tarball []byte) SourceRef {
	return SourceRef{Bucket: BucketSources, SHA1: sha1Hex(tarball), Size: int64(len(tarball))}
}

// submittedFor is the result of submitting req before anything is known.
func submittedFor(req *Request) Submitted {
	return Submitted{ID: req.ID, Tenant: req.Tenant, Subject: SubjectFor(req), Run: 1}
}

// prepare fills in what the producer owns (Version when zero, a fresh ID
// when empty, the source reference), validates the request and encodes
// it. Everything here is decided by the request alone, before any round
// trip.
func (c *Client) prepare(req *Request, src SourceRef) ([]byte, error) {
	if req.Version == 0 {
		req.Version = RequestVersion
	}
	if req.ID == "" {
		req.ID = NewID()
	}
	if err := c.forTenant(&req.Tenant); err != nil {
		return nil, err
	}
	req.Source = src
	if src.Size == 0 {
		return nil, invalid("source", "the tarball is empty")
	}
	if err := req.Validate(c.cfg.Limits); err != nil {
		return nil, err
	}
	data, err := jsonMarshal(req)
	if err != nil {
		return nil, err
	}
	if len(data) > c.cfg.Limits.MaxRequestBytes {
		return nil, invalid("", "request is %d bytes, more than the %d allowed", len(data), c.cfg.Limits.MaxRequestBytes)
	}
	return data, nil
}

// existingJob returns the checkpoint of the job req's id already belongs
// to, or nil. A retry after the first message left the queue is caught
// here: a message owns the job already (or it ended), so its outcome is returned
// instead of running it again. A checkpoint no message owns yet (a cancel
// that came first) still needs this message to reach its end. A failed
// read counts as no job: while the first message is queued the stream
// still refuses the duplicate, and a worker acks a later one unrun.
func (c *Client) existingJob(ctx context.Context, req *Request) *JobState {
	st, err := c.readState(ctx, req.Tenant, req.ID)
	if err != nil || st == nil || (st.Seq == 0 && !st.Done()) {
		return nil
	}
	return st
}

// storeSource references the tarball for this request, then uploads it
// unless a fresh copy is there (see the note in sources.go on ordering).
func (c *Client) storeSource(ctx context.Context, req *Request, tarball []byte) error {
	if err := c.putRef(ctx, SourceRefKey(req)); err != nil {
		return fmt.Errorf("reference source tarball: %w", err)
	}
	return c.ensureSource(ctx, req.Tenant, req.Source.SHA1, tarball)
}

// ensureSource stores tenant's copy of the tarball unless one written
// less than SourceGrace/2 ago is there. The requests relying on it must
// hold their references already (see the note in sources.go on ordering).
func (c *Client) ensureSource(ctx context.Context, tenant, sha string, tarball []byte) error {
	key := tenant + "." + sha
	if c.storedFresh(key) {
		return nil
	}
	info, err := c.sources.Stat(ctx, tenant, sha)
	switch {
	case err == nil && info.Size == int64(len(tarball)) && c.now().Sub(info.Stored) < c.cfg.SourceGrace/2:
		c.remember(key, info.Stored)
		return nil
	case err != nil && !errors.Is(err, ErrSourceNotFound):
		return fmt.Errorf("look up source tarball: %w", err)
	}
	if err := c.sources.Put(ctx, tenant, sha, tarball); err != nil {
		return err
	}
	c.remember(key, c.now())
	return nil
}

// releaseRefs drops the source references of requests that were certainly
// not published, so that they do not pin their tarball. Best effort: the
// refs bucket's max age is the backstop. It runs even when ctx has ended,
// which is often why the requests were not published.
func (c *Client) releaseRefs(ctx context.Context, keys []string) {
	ctx = context.WithoutCancel(ctx)
	pubpipe.ForEach(len(keys), c.cfg.MaxPending, func(i int) {
		_ = c.deleteRef(ctx, keys[i])
	})
}

// storedFresh reports whether the tarball (<tenant>.<sha1>) was written
// less than SourceGrace/2 ago, as far as this client knows.
func (c *Client) storedFresh(key string) bool {
	c.storedMu.Lock()
	defer c.storedMu.Unlock()
	at, ok := c.stored[key]
	return ok && c.now().Sub(at) < c.cfg.SourceGrace/2
}

func (c *Client) remember(key string, modTime time.Time) {
	c.storedMu.Lock()
	defer c.storedMu.Unlock()
	if c.stored == nil || len(c.stored) >= maxStoredTarballs {
		c.stored = make(map[string]time.Time)
	}
	c.stored[key] = modTime
}

// WatchFilter selects events. With neither field set, every event.
type WatchFilter struct {
	Tenant string
	ID     string
	// FromStart replays the stored events first; otherwise only new
	// events are delivered.
	FromStart bool
	// TerminalOnly yields terminal events only. The others are passed
	// over by their HeaderEventType, undecoded: a platform waiting for
	// outcomes spends nothing on the progress events of its deploys.
	TerminalOnly bool
}

func (f WatchFilter) subject() string {
	tenant, id := f.Tenant, f.ID
	if tenant == "" {
		tenant = "*"
	}
	if id == "" {
		id = "*"
	}
	return eventsPrefix + tenant + "." + id
}

// Watcher delivers the events of a WatchFilter.
type Watcher struct {
	// next returns the next event message; stop ends the watch.
	next         func() (data []byte, hdr nats.Header, err error)
	stop         func()
	ctx          context.Context
	terminalOnly bool
	// first holds the event a tenant's watch replays (FromStart), and
	// seen its id, so that the same event arriving live is not repeated.
	first []byte
	seen  string
}

// Watch starts following events matching f. The subscription exists when
// Watch returns, so a caller that watches new events before it submits
// cannot miss any.
//
// A tenant's client (ClientConfig.Tenant) follows its own events by
// subscription, since its user may create no consumer. FromStart then
// needs an ID, and replays that request's latest event (its terminal
// event once it ended) before the live ones; a subscription misses what
// is published while the connection is down, which Status or LastEvent
// recover.
func (c *Client) Watch(ctx context.Context, f WatchFilter) (*Watcher, error) {
	if c.cfg.Tenant != "" {
		return c.watchSubscribed(ctx, f)
	}
	policy := jetstream.DeliverNewPolicy
	if f.FromStart {
		policy = jetstream.DeliverAllPolicy
	}
	cons, err := c.js.OrderedConsumer(ctx, StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{f.subject()},
		DeliverPolicy:  policy,
	})
	if err != nil {
		return nil, fmt.Errorf("watch events: %w", err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("watch events: %w", err)
	}
	next := func() ([]byte, nats.Header, error) {
		m, err := msgs.Next()
		if err != nil {
			return nil, nil, err
		}
		return m.Data(), m.Headers(), nil
	}
	return &Watcher{next: next, stop: msgs.Stop, ctx: ctx, terminalOnly: f.TerminalOnly}, nil
}

func (c *Client) watchSubscribed(ctx context.Context, f WatchFilter) (*Watcher, error) {
	if err := c.forTenant(&f.Tenant); err != nil {
		return nil, err
	}
	if f.FromStart && f.ID == "" {
		return nil, fmt.Errorf("watch events: replaying a whole tenant's events needs a consumer: %w", ErrAdminOnly)
	}
	sub, err := c.js.Conn().SubscribeSync(f.subject())
	if err != nil {
		return nil, fmt.Errorf("watch events: %w", err)
	}
	// Live when the server has it: a flush is a round trip after it.
	if err := c.js.Conn().FlushWithContext(ctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("watch events: %w", err)
	}
	w := &Watcher{ctx: ctx, terminalOnly: f.TerminalOnly, stop: func() { _ = sub.Unsubscribe() }}
	w.next = func() ([]byte, nats.Header, error) {
		m, err := sub.NextMsgWithContext(w.ctx)
		if errors.Is(err, nats.ErrBadSubscription) || errors.Is(err, nats.ErrConnectionClosed) {
			return nil, nil, jetstream.ErrMsgIteratorClosed
		}
		if err != nil {
			return nil, nil, err
		}
		return m.Data, m.Header, nil
	}
	if f.FromStart {
		ev, err := c.lastEvent(ctx, f.Tenant, f.ID)
		if err != nil {
			w.stop()
			return nil, fmt.Errorf("watch events: %w", err)
		}
		if ev != nil {
			w.first, _ = json.Marshal(ev)
			w.seen = ev.ID
		}
	}
	return w, nil
}

// Stop ends the watch; Events then returns.
func (w *Watcher) Stop() { w.stop() }

// Events yields events until the Watch context ends, Stop is called or
// the caller stops ranging. A decode failure is yielded as an error and
// watching goes on.
func (w *Watcher) Events() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		stop := context.AfterFunc(w.ctx, w.stop)
		defer stop()
		if w.first != nil {
			ev, err := DecodeEvent(w.first)
			w.first = nil
			if (err != nil || !w.terminalOnly || ev.Terminal()) && !yield(ev, err) {
				return
			}
		}
		for {
			data, hdr, err := w.next()
			if err != nil {
				if w.ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					yield(Event{}, fmt.Errorf("watch events: %w", err))
				}
				return
			}
			if w.terminalOnly {
				if t := hdr.Get(HeaderEventType); t != "" && !EventType(t).Terminal() {
					continue
				}
			}
			ev, err := DecodeEvent(data)
			if err == nil && w.terminalOnly && !ev.Terminal() {
				continue
			}
			if err == nil && w.seen != "" && ev.ID == w.seen {
				continue // replayed already
			}
			if !yield(ev, err) {
				return
			}
		}
	}
}

// JobStatus is what is known of a request.
type JobStatus struct {
	// State is the job's checkpoint; nil when no worker has started it
	// (still queued, unknown, or rejected before running).
	State *JobState
	// Last is the request's latest event, nil when it has none.
	Last *Event
	// Queued is the request waiting in the requests stream for a worker,
	// when it has neither a job nor an event yet (an admin's client looks).
	Queued *QueuedRequest
}

// QueuedRequest is a request no worker has taken yet.
type QueuedRequest struct {
	Tenant    string    `json:"tenant"`
	Subject   string    `json:"subject"`
	Sequence  uint64    `json:"sequence"`
	Submitted time.Time `json:"submitted"`
}

// ErrUnknownRequest is returned by Status for an id with no job and no event.
var ErrUnknownRequest = errors.New("no job or event for this request id (still queued, or unknown)")

// Status returns a request's checkpoint and latest event. Tenant may be
// empty: the id alone is looked up across tenants.
func (c *Client) Status(ctx context.Context, tenant, id string) (*JobStatus, error) {
	if err := c.forTenant(&tenant); err != nil {
		return nil, err
	}
	if tenant == "" {
		var err error
		if tenant, err = c.findTenant(ctx, id); err != nil {
			return nil, err
		}
	}
	out := &JobStatus{}
	if tenant != "" {
		st, err := c.readState(ctx, tenant, id)
		if err != nil {
			return nil, fmt.Errorf("read job state: %w", err)
		}
		out.State = st
		if out.Last, err = c.lastEvent(ctx, tenant, id); err != nil {
			return nil, err
		}
	}
	if out.State == nil && out.Last == nil && c.requests != nil {
		q, err := c.queued(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		out.Queued = q
	}
	if out.State == nil && out.Last == nil && out.Queued == nil {
		return nil, ErrUnknownRequest
	}
	return out, nil
}

// LastEvent returns a request's latest event (its terminal event once it
// ended), nil when it has none. It is a direct get, which a tenant's user
// may make for its own requests.
func (c *Client) LastEvent(ctx context.Context, tenant, id string) (*Event, error) {
	return c.lastEvent(ctx, tenant, id)
}

func (c *Client) lastEvent(ctx context.Context, tenant, id string) (*Event, error) {
	if err := c.forTenant(&tenant); err != nil {
		return nil, err
	}
	ctx, cancel := c.apiCtx(ctx)
	defer cancel()
	msg, err := streamget.Direct(ctx, c.js.Conn(), StreamEvents, EventSubject(tenant, id), jetstream.ErrMsgNotFound)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read last event: %w", err)
	}
	ev, err := DecodeEvent(msg.Data)
	if err != nil {
		return nil, err
	}
	return &ev, nil
}

// findTenant finds the tenant of a request id: from its checkpoint key
// when a worker started it, else from its events (a rejected request has
// no checkpoint). "" when neither exists.
func (c *Client) findTenant(ctx context.Context, id string) (string, error) {
	if err := c.adminOnly("look up the tenant of " + id); err != nil {
		return "", err
	}
	lister, err := c.jobs.ListKeysFiltered(ctx, "*."+id)
	if err != nil {
		return "", fmt.Errorf("look up job %s: %w", id, err)
	}
	tenant := ""
	for k := range lister.Keys() { // drained: see hasRefs
		tenant = k[:len(k)-len(id)-1]
	}
	if tenant != "" {
		return tenant, nil
	}
	msg, err := c.events.GetLastMsgForSubject(ctx, WatchFilter{ID: id}.subject())
	switch {
	case err == nil:
		return tenantOfEventSubject(msg.Subject), nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return "", nil
	}
	return "", fmt.Errorf("look up events of %s: %w", id, err)
}

// queued finds a request still in the requests stream, in either subject
// form; tenant "" looks in every tenant's.
func (c *Client) queued(ctx context.Context, tenant, id string) (*QueuedRequest, error) {
	t := tenant
	if t == "" {
		t = "*"
	}
	for _, subj := range []string{RequestSubject(t, id), BatchRequestSubject(t, id)} {
		m, err := c.requests.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up the queued request %s: %w", id, err)
		}
		rt, _ := RequestOrigin(m.Subject)
		return &QueuedRequest{Tenant: rt, Subject: m.Subject, Sequence: m.Sequence, Submitted: m.Time}, nil
	}
	return nil, nil
}

func tenantOfEventSubject(subject string) string {
	rest := subject[len(eventsPrefix):]
	for i := range len(rest) {
		if rest[i] == '.' {
			return rest[:i]
		}
	}
	return ""
}

// sha1Hex is a tarball's SHA-1 in hex: the name Vercel's file upload
// and a deployment's file list give it, and the source store's key.
func sha1Hex(data []byte) string {
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:])
}
