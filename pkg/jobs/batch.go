package jobs

import (
	"context"
	"fmt"

	"github.com/deployq/deployq/internal/pubpipe"
	"github.com/nats-io/nats.go"
)

// BatchResult is what became of one request of SubmitBatch.
type BatchResult struct {
	// Submitted is what Submit would have returned for the request. ID
	// (generated when the request had none) and Tenant are filled in even
	// when Err is set, so a request that failed can be submitted again
	// under the same id; Subject is, unless the request is invalid.
	Submitted
	// Err is why the request was not accepted: a *ValidationError for the
	// request itself, else the step that failed (its source reference, the
	// tarball's upload, its publish) or the context's end. Nil when the
	// request was published or is a duplicate.
	Err error
}

// BatchError is SubmitBatch's error when some of its requests were not
// accepted. Each result says which and why; errors.Is and errors.As see
// every failed request's error.
type BatchError struct {
	// Failed requests out of Total.
	Failed, Total int
	// First is the index of the first failed request.
	First int
	errs  []error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("%d of %d requests not accepted; %v", e.Failed, e.Total, e.errs[0])
}

// Unwrap returns the error of every failed request, in request order.
func (e *BatchError) Unwrap() []error { return e.errs }

// SubmitBatch submits requests that deploy one source tarball, as Submit
// would one by one, and returns one result per request in the order of
// reqs. It suits a platform that deploys one source many times at once,
// a classroom's starter app or a template gallery's entry for each new
// user: the tarball is hashed, looked up and stored once for the whole
// batch, and the round trips that make Submit slow are pipelined instead
// of paid in turn. A call returns when every request has its answer, so
// there is no future to track, no flush to forget and no background
// publisher to close; a caller with a steady stream of unrelated requests
// calls Submit from several goroutines instead.
//
// Each request keeps every guarantee of Submit:
//   - Validation is per request. An invalid one gets its
//     *ValidationError and does not hold the others back.
//   - An id whose job already started or ended (its checkpoint exists, as
//     for a late retry) is not published again:
//     its result is Duplicate with the Existing checkpoint. The checks are
//     direct gets, like Submit's, MaxPending at a time. A batched get
//     (one request naming many keys) would be cheaper, but it names the
//     keys in its body, where a tenant's NATS permissions cannot reach
//     (see docs/OPERATIONS.md), so a producer with per-tenant credentials
//     could not use it.
//   - An id given twice in the batch is submitted once, for its first
//     valid occurrence; the later ones get that occurrence's result,
//     marked Duplicate (and its error, if it failed).
//   - The stream refuses a request whose id has a message queued still
//     (see RequestSubject), which shows as Duplicate, as with Submit.
//   - A request is published only after its source reference is stored
//     and, after that, the tarball is known to be in the store (uploaded
//     or found fresh): the order sources.go explains, which keeps the
//     janitor from deleting a tarball a queued request needs.
//   - A request whose publish certainly failed (the stream refused it or
//     no stream took it) releases its reference, best effort. One whose
//     answer did not come (ctx ended, the connection dropped) may be in
//     the stream and keeps it.
//
// A request goes through four stages: the duplicate check, its source
// reference (an asynchronous KV put), the tarball's lookup or upload
// (paid once: later requests rely on the client having stored it less
// than SourceGrace/2 ago), and its publish (asynchronous). Requests pass
// in chunks of ClientConfig.MaxPending, the stages working on consecutive
// chunks at the same time, each with at most MaxPending in flight. They
// are published in the order of reqs, so new ones get increasing stream
// sequences.
//
// The error is nil when every request was published or is a duplicate,
// else a *BatchError; the results are complete either way. ctx bounds the
// whole batch; without a deadline, each publish waits for its answer at
// most the JetStream context's default timeout, as Submit's would. reqs
// is not changed. SubmitBatch and Submit may be called concurrently.
func (c *Client) SubmitBatch(ctx context.Context, reqs []Request, tarball []byte) ([]BatchResult, error) {
	b := &batch{c: c, reqs: make([]Request, len(reqs)), data: make([][]byte, len(reqs)), res: make([]BatchResult, len(reqs))}
	src := sourceOf(tarball)
	first := make(map[string]int, len(reqs)) // id → index of its first valid occurrence
	sameAs := map[int]int{}                  // a later occurrence → the first
	var todo []int
	for i := range reqs {
		req := reqs[i]
		data, err := c.prepare(&req, src)
		b.res[i].Submitted = submittedFor(&req)
		if err != nil {
			b.res[i].Subject, b.res[i].Err = "", err
			continue
		}
		if j, ok := first[req.ID]; ok {
			sameAs[i] = j
			continue
		}
		first[req.ID] = i
		b.reqs[i], b.data[i] = req, data
		todo = append(todo, i)
	}
	b.run(ctx, todo, src.SHA1, tarball)
	for i, j := range sameAs {
		r := &b.res[i]
		r.Sequence, r.Duplicate, r.Existing, r.Run = b.res[j].Sequence, true, b.res[j].Existing, b.res[j].Run
		if err := b.res[j].Err; err != nil {
			r.Err = fmt.Errorf("same id as request #%d, which failed: %w", j, err)
		}
	}
	return b.res, batchError(b.res)
}

// batch is one SubmitBatch call's state. Each stage takes the indexes of
// the requests still going and returns those that go on.
type batch struct {
	c    *Client
	reqs []Request // as prepared; only those that passed
	data [][]byte  // their encoded form
	res  []BatchResult
	// srcErr is, per tenant, whether its copy of the tarball is stored
	// (nil) or why it could not be; the tenant's requests that reach that
	// stage after it fail with it.
	srcErr map[string]error
}

// run takes the requests through the stages in chunks of MaxPending, one
// goroutine per stage, so that a chunk's references go out while the next
// chunk's checks do and the previous chunk's requests are published: the
// connection always carries all three kinds of work, where stages done
// one after the other would leave client and server waiting on each
// other at every turn. Chunks keep their order through every stage, so
// the requests are published in input order.
func (b *batch) run(ctx context.Context, todo []int, sha string, tarball []byte) {
	size := b.c.cfg.MaxPending
	checked, referenced := make(chan []int, 1), make(chan []int, 1)
	go func() {
		defer close(checked)
		for lo := 0; lo < len(todo); lo += size {
			hi := min(lo+size, len(todo))
			checked <- b.skipExisting(ctx, todo[lo:hi:hi])
		}
	}()
	go func() {
		defer close(referenced)
		for chunk := range checked {
			referenced <- b.reference(ctx, chunk)
		}
	}()
	for chunk := range referenced {
		b.publish(ctx, b.ensureSource(ctx, chunk, sha, tarball))
	}
}

// skipExisting marks the requests whose job exists already as duplicates.
func (b *batch) skipExisting(ctx context.Context, todo []int) []int {
	found := make([]*JobState, len(todo))
	pubpipe.ForEach(len(todo), b.c.cfg.MaxPending, func(k int) {
		found[k] = b.c.existingJob(ctx, &b.reqs[todo[k]])
	})
	rest := todo[:0]
	for k, i := range todo {
		if st := found[k]; st != nil {
			b.res[i].Duplicate, b.res[i].Existing = true, st
			continue
		}
		rest = append(rest, i)
	}
	return rest
}

// reference stores the requests' source references. A put into a KV
// bucket is a publish to the key's subject, so they are published
// asynchronously, where KeyValue.Put would wait for each.
func (b *batch) reference(ctx context.Context, todo []int) []int {
	msgs := make([]*nats.Msg, len(todo))
	for k, i := range todo {
		msgs[k] = &nats.Msg{Subject: b.c.refsPut + SourceRefKey(&b.reqs[i])}
	}
	acks := pubpipe.PublishAll(ctx, b.c.js, msgs, b.c.cfg.MaxPending)
	rest := todo[:0]
	for k, i := range todo {
		if err := acks[k].Err; err != nil {
			b.res[i].Err = fmt.Errorf("reference source tarball: %w", err)
			continue
		}
		rest = append(rest, i)
	}
	return rest
}

// ensureSource makes sure the tarball is in the store for requests whose
// references are stored, and returns those that may be published. After
// the first chunk it is the client's memory of having stored it, unless
// SourceGrace/2 runs out during the batch.
func (b *batch) ensureSource(ctx context.Context, todo []int, sha string, tarball []byte) []int {
	if b.srcErr == nil {
		b.srcErr = map[string]error{}
	}
	rest := todo[:0]
	for _, i := range todo {
		tenant := b.reqs[i].Tenant
		err, done := b.srcErr[tenant]
		if !done {
			err = b.c.ensureSource(ctx, tenant, sha, tarball)
			b.srcErr[tenant] = err
		}
		if err != nil {
			// The reference stays: it may be an earlier submit's of the
			// same id, still queued. The bucket's max age removes the rest.
			b.res[i].Err = err
			continue
		}
		rest = append(rest, i)
	}
	return rest
}

// publish publishes the requests, each on its own subject (requestMsg), and
// releases the references of those certainly not published.
func (b *batch) publish(ctx context.Context, todo []int) {
	msgs := make([]*nats.Msg, len(todo))
	for k, i := range todo {
		msgs[k] = requestMsg(&b.reqs[i], b.data[i])
	}
	acks := pubpipe.PublishAll(ctx, b.c.js, msgs, b.c.cfg.MaxPending)
	var release []string
	for k, i := range todo {
		r := &b.res[i]
		if seq, taken := subjectTaken(acks[k].Err); taken {
			r.Sequence, r.Duplicate = seq, true
			continue
		}
		if err := acks[k].Err; err != nil {
			r.Err = fmt.Errorf("publish request %s: %w", r.ID, err)
			if !pubpipe.MayBeStored(err) {
				release = append(release, SourceRefKey(&b.reqs[i]))
			}
			continue
		}
		r.Sequence = acks[k].Ack.Sequence
	}
	b.c.releaseRefs(ctx, release)
}

// batchError sums up the failed results; nil when there are none.
func batchError(res []BatchResult) error {
	var e *BatchError
	for i := range res {
		if res[i].Err == nil {
			continue
		}
		if e == nil {
			e = &BatchError{Total: len(res), First: i}
		}
		e.Failed++
		e.errs = append(e.errs, fmt.Errorf("request #%d (%q): %w", i, res[i].ID, res[i].Err))
	}
	if e == nil {
		return nil
	}
	return e
}
