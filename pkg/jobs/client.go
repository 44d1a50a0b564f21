package jobs

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
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
	c.Limits = c.Limits.withDefaults()
	c.SourceGrace = SourceJanitorConfig{Grace: c.SourceGrace}.withDefaults().Grace
	if c.MaxPending <= 0 {
		c.MaxPending = 256
	}
	return c
}

// Client submits deploy requests and follows their events. Other Go
// services import it to publish requests; cmd/enqueue is built on it.
type Client struct {
	js      jetstream.JetStream
	sources jetstream.ObjectStore
	refs    jetstream.KeyValue
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
	cfg        ClientConfig
	now        func() time.Time

	// stored remembers when tarballs this client saw in the store were
	// written (the store's own ModTime), so that a tarball submitted again
	// within SourceGrace/2 needs no lookup: the same rule as the lookup's.
	storedMu sync.Mutex
	stored   map[string]time.Time
}

// maxStoredTarballs bounds Client.stored; past it the memory starts over.
const maxStoredTarballs = 4096

// NewClient binds to the streams and buckets a worker (or Setup) created.
func NewClient(ctx context.Context, js jetstream.JetStream, cfg ClientConfig) (*Client, error) {
	c := &Client{js: js, cfg: cfg.withDefaults(), now: time.Now}
	var err error
	if c.sources, err = js.ObjectStore(ctx, BucketSources); err != nil {
		return nil, bindErr("object store "+BucketSources, err)
	}
	if c.refs, err = js.KeyValue(ctx, BucketSourceRefs); err != nil {
		return nil, bindErr("bucket "+BucketSourceRefs, err)
	}
	// The bucket's own configuration says where its puts go (a mirror
	// takes them on its origin's subjects).
	refsStream, err := js.Stream(ctx, "KV_"+BucketSourceRefs)
	if err != nil {
		return nil, bindErr("bucket "+BucketSourceRefs, err)
	}
	c.refsPut = kvPutPrefix(js.Options(), refsStream.CachedInfo().Config)
	if c.jobs, err = js.KeyValue(ctx, BucketJobs); err != nil {
		return nil, bindErr("bucket "+BucketJobs, err)
	}
	c.jobsLeader = newLeaderKV(js, c.jobs)
	if c.events, err = js.Stream(ctx, StreamEvents); err != nil {
		return nil, bindErr("stream "+StreamEvents, err)
	}
	if c.dlq, err = js.Stream(ctx, StreamDLQ); err != nil {
		return nil, bindErr("stream "+StreamDLQ, err)
	}
	return c, nil
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
		if !mayBeStored(err) {
			c.releaseRefs(ctx, []string{refKey(&req)})
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
	m := &nats.Msg{Subject: RequestSubject(req.Tenant, req.ID), Data: data, Header: make(nats.Header, 1)}
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
	return SourceRef{Bucket: BucketSources, SHA1: vercel.SHA1Hex(tarball), Size: int64(len(tarball))}
}

// submittedFor is the result of submitting req before anything is known.
func submittedFor(req *Request) Submitted {
	return Submitted{ID: req.ID, Tenant: req.Tenant, Subject: RequestSubject(req.Tenant, req.ID), Run: 1}
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
	st, err := ReadState(ctx, c.jobs, req.Tenant, req.ID)
	if err != nil || st == nil || (st.Seq == 0 && !st.Done()) {
		return nil
	}
	return st
}

// storeSource references the tarball for this request, then uploads it
// unless a fresh copy is there (see the note in sources.go on ordering).
func (c *Client) storeSource(ctx context.Context, req *Request, tarball []byte) error {
	if _, err := c.refs.Put(ctx, refKey(req), nil); err != nil {
		return fmt.Errorf("reference source tarball: %w", err)
	}
	return c.ensureSource(ctx, req.Source.SHA1, tarball)
}

// ensureSource uploads the tarball unless a copy written less than
// SourceGrace/2 ago is there. The requests relying on it must hold their
// references already (see the note in sources.go on ordering).
func (c *Client) ensureSource(ctx context.Context, sha string, tarball []byte) error {
	if c.storedFresh(sha) {
		return nil
	}
	info, err := c.sources.GetInfo(ctx, sha)
	switch {
	case err == nil && !info.Deleted && c.now().Sub(info.ModTime) < c.cfg.SourceGrace/2:
		c.remember(sha, info.ModTime)
		return nil
	case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
		return fmt.Errorf("look up source tarball: %w", err)
	}
	// nats.go stamps a put with the writer's clock; the next lookup
	// would read the same time back.
	if _, err := c.sources.PutBytes(ctx, sha, tarball); err != nil {
		return fmt.Errorf("store source tarball: %w", err)
	}
	c.remember(sha, c.now())
	return nil
}

// releaseRefs drops the source references of requests that were certainly
// not published, so that they do not pin their tarball. Best effort: the
// refs bucket's max age is the backstop. It runs even when ctx has ended,
// which is often why the requests were not published.
func (c *Client) releaseRefs(ctx context.Context, keys []string) {
	ctx = context.WithoutCancel(ctx)
	forEach(len(keys), c.cfg.MaxPending, func(i int) {
		_ = c.refs.Delete(ctx, keys[i])
	})
}

// storedFresh reports whether the tarball was written less than
// SourceGrace/2 ago, as far as this client knows.
func (c *Client) storedFresh(sha string) bool {
	c.storedMu.Lock()
	defer c.storedMu.Unlock()
	at, ok := c.stored[sha]
	return ok && c.now().Sub(at) < c.cfg.SourceGrace/2
}

func (c *Client) remember(sha string, modTime time.Time) {
	c.storedMu.Lock()
	defer c.storedMu.Unlock()
	if c.stored == nil || len(c.stored) >= maxStoredTarballs {
		c.stored = make(map[string]time.Time)
	}
	c.stored[sha] = modTime
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
	msgs         jetstream.MessagesContext
	ctx          context.Context
	terminalOnly bool
}

// Watch starts following events matching f. The subscription exists when
// Watch returns, so a caller that watches new events before it submits
// cannot miss any.
func (c *Client) Watch(ctx context.Context, f WatchFilter) (*Watcher, error) {
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
	return &Watcher{msgs: msgs, ctx: ctx, terminalOnly: f.TerminalOnly}, nil
}

// Stop ends the watch; Events then returns.
func (w *Watcher) Stop() { w.msgs.Stop() }

// Events yields events until the Watch context ends, Stop is called or
// the caller stops ranging. A decode failure is yielded as an error and
// watching goes on.
func (w *Watcher) Events() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		stop := context.AfterFunc(w.ctx, w.msgs.Stop)
		defer stop()
		for {
			msg, err := w.msgs.Next()
			if err != nil {
				if w.ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					yield(Event{}, fmt.Errorf("watch events: %w", err))
				}
				return
			}
			if w.terminalOnly {
				if t := msg.Headers().Get(HeaderEventType); t != "" && !terminalType(t) {
					continue
				}
			}
			ev, err := DecodeEvent(msg.Data())
			if err == nil && w.terminalOnly && !ev.Terminal() {
				continue
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
}

// ErrUnknownRequest is returned by Status for an id with no job and no event.
var ErrUnknownRequest = errors.New("no job or event for this request id (still queued, or unknown)")

// Status returns a request's checkpoint and latest event. Tenant may be
// empty: the id alone is looked up across tenants.
func (c *Client) Status(ctx context.Context, tenant, id string) (*JobStatus, error) {
	if tenant == "" {
		var err error
		if tenant, err = c.findTenant(ctx, id); err != nil {
			return nil, err
		}
	}
	out := &JobStatus{}
	if tenant != "" {
		st, err := ReadState(ctx, c.jobs, tenant, id)
		if err != nil {
			return nil, fmt.Errorf("read job state: %w", err)
		}
		out.State = st
		if out.Last, err = c.lastEvent(ctx, tenant, id); err != nil {
			return nil, err
		}
	}
	if out.State == nil && out.Last == nil {
		return nil, ErrUnknownRequest
	}
	return out, nil
}

// lastEvent returns a request's latest event, nil when it has none.
func (c *Client) lastEvent(ctx context.Context, tenant, id string) (*Event, error) {
	msg, err := c.events.GetLastMsgForSubject(ctx, EventSubject(tenant, id))
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

func tenantOfEventSubject(subject string) string {
	rest := subject[len(eventsPrefix):]
	for i := range len(rest) {
		if rest[i] == '.' {
			return rest[:i]
		}
	}
	return ""
}
