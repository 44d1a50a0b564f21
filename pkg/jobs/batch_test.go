package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go/jetstream"
)

// batchSetup is a deployq without workers and a client whose batches keep
// few publishes in flight, so that a batch of a few hundred goes through
// the window many times.
func batchSetup(t *testing.T) (*jobstest.Harness, *jobs.Client, context.Context) {
	t.Helper()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	c, err := jobs.NewClient(ctx, h.JS, jobs.ClientConfig{MaxPending: 16})
	if err != nil {
		t.Fatal(err)
	}
	return h, c, ctx
}

// storedRequest is a message of the requests stream.
type storedRequest struct {
	req     jobs.Request
	subject string
	at      time.Time
}

// storedRequests reads the requests stream, by sequence.
func storedRequests(t *testing.T, h *jobstest.Harness, ctx context.Context) map[uint64]storedRequest {
	t.Helper()
	info, err := h.Assets.Requests.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]storedRequest{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := h.Assets.Requests.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var r jobs.Request
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		out[seq] = storedRequest{req: r, subject: m.Subject, at: m.Time}
	}
	return out
}

func refKeyOf(tgz []byte, tenant, id string) string {
	return vercel.SHA1Hex(tgz) + "." + tenant + "." + id
}

// Every request of a large batch is on the stream once, in input order,
// with its id as Nats-Msg-Id and a source reference stored before it.
func TestSubmitBatchPublishesEveryRequestOnce(t *testing.T) {
	t.Parallel()
	h, c, ctx := batchSetup(t)
	tgz := h.Tarball(t, map[string]string{"index.js": "batch"})
	const n = 300
	reqs := make([]jobs.Request, n)
	for i := range reqs {
		reqs[i] = jobstest.Request("acme", "class")
		if i%3 != 0 { // the others get generated ids
			reqs[i].ID = fmt.Sprintf("student-%03d", i)
		}
	}
	res, err := c.SubmitBatch(ctx, reqs, tgz)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != n {
		t.Fatalf("%d results for %d requests", len(res), n)
	}
	ids := map[string]bool{}
	for i, r := range res {
		if reqs[i].ID != "" && r.ID != reqs[i].ID {
			t.Fatalf("result %d is for %q, want %q", i, r.ID, reqs[i].ID)
		}
		if r.Err != nil || r.Duplicate || r.Sequence == 0 || r.Subject != jobs.RequestSubject("acme", r.ID) {
			t.Fatalf("result %d: %+v", i, r)
		}
		if i > 0 && r.Sequence <= res[i-1].Sequence {
			t.Fatalf("result %d: sequence %d after %d; publishes must leave in input order", i, r.Sequence, res[i-1].Sequence)
		}
		ids[r.ID] = true
	}
	if len(ids) != n {
		t.Fatalf("%d distinct ids for %d requests", len(ids), n)
	}

	stored := storedRequests(t, h, ctx)
	if len(stored) != n {
		t.Fatalf("the stream holds %d requests, want %d", len(stored), n)
	}
	for _, r := range res {
		m, ok := stored[r.Sequence]
		if !ok || m.req.ID != r.ID || m.subject != jobs.RequestSubject("acme", r.ID) {
			t.Fatalf("sequence %d holds %+v (on %s), want request %s", r.Sequence, m.req, m.subject, r.ID)
		}
		if m.req.Source.SHA1 != vercel.SHA1Hex(tgz) || m.req.Version != jobs.RequestVersion {
			t.Fatalf("request %s: source %+v, version %d", r.ID, m.req.Source, m.req.Version)
		}
		ref, err := h.Assets.SourceRefs.Get(ctx, refKeyOf(tgz, "acme", r.ID))
		if err != nil {
			t.Fatalf("request %s has no source reference: %v", r.ID, err)
		}
		// Both times are the server's: the reference was stored first.
		if !ref.Created().Before(m.at) {
			t.Fatalf("request %s: reference stored at %s, request at %s", r.ID, ref.Created().Format(time.RFC3339Nano), m.at.Format(time.RFC3339Nano))
		}
	}
	if info, err := h.Assets.Sources.Stat(ctx, "acme", vercel.SHA1Hex(tgz)); err != nil || info.Size != int64(len(tgz)) {
		t.Fatalf("tarball: %+v, %v", info, err)
	}
}

// An invalid request gets its own error and the others go through; an id
// given twice is published once; an id whose job already ran returns its
// checkpoint and is neither referenced nor published again.
func TestSubmitBatchInvalidAndDuplicateRequests(t *testing.T) {
	t.Parallel()
	h, c, ctx := batchSetup(t)
	tgz := h.Tarball(t, nil)
	ran := jobs.JobState{Version: 1, ID: "already-ran", Tenant: "acme", Status: jobs.StatusSucceeded,
		Seq: 42, Run: 1, DeploymentURL: "https://already-ran.example"}
	data, _ := json.Marshal(ran)
	if _, err := h.Assets.Jobs.Put(ctx, "acme.already-ran", data); err != nil {
		t.Fatal(err)
	}
	reqs := []jobs.Request{
		jobstest.Request("acme", "first"),
		jobstest.Request("Not A Tenant", "bad"),
		jobstest.Request("acme", "second"),
		jobstest.Request("acme", "first-again"),
		jobstest.Request("acme", "late-retry"),
		jobstest.Request("acme", "third"),
	}
	reqs[0].ID, reqs[3].ID, reqs[4].ID = "twice", "twice", "already-ran"
	res, err := c.SubmitBatch(ctx, reqs, tgz)

	var berr *jobs.BatchError
	if !errors.As(err, &berr) || berr.Failed != 1 || berr.Total != len(reqs) || berr.First != 1 {
		t.Fatalf("error %v (%+v), want a BatchError for request #1 alone", err, berr)
	}
	var verr *jobs.ValidationError
	if !errors.As(err, &verr) || verr.Field != "tenant" {
		t.Fatalf("the batch error does not carry the validation error: %v", err)
	}
	if !errors.As(res[1].Err, &verr) || verr.Field != "tenant" {
		t.Fatalf("invalid request: %+v", res[1])
	}
	for _, i := range []int{0, 2, 5} {
		if r := res[i]; r.Err != nil || r.Duplicate || r.Sequence == 0 {
			t.Fatalf("request #%d: %+v", i, r)
		}
	}
	if r := res[3]; r.Err != nil || !r.Duplicate || r.ID != "twice" || r.Sequence != res[0].Sequence || r.Existing != nil {
		t.Fatalf("second use of an id: %+v, want a duplicate of sequence %d", r, res[0].Sequence)
	}
	if r := res[4]; r.Err != nil || !r.Duplicate || r.Sequence != 0 || r.Existing == nil ||
		r.Existing.Status != jobs.StatusSucceeded || r.Existing.DeploymentURL != ran.DeploymentURL {
		t.Fatalf("id that already ran: %+v (existing %+v)", r, r.Existing)
	}

	stored := storedRequests(t, h, ctx)
	if len(stored) != 3 {
		t.Fatalf("the stream holds %d requests, want 3: %+v", len(stored), stored)
	}
	for _, m := range stored {
		if m.req.ID == "already-ran" || m.req.Tenant != "acme" {
			t.Fatalf("published %+v", m.req)
		}
	}
	if _, err := h.Assets.SourceRefs.Get(ctx, refKeyOf(tgz, "acme", "already-ran")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("a job that already ran got a new source reference: %v", err)
	}
}

// A request no stream takes is not published and releases its reference,
// while the rest of its batch goes through; Submit does the same.
func TestSubmitBatchReleasesReferencesOfFailedPublishes(t *testing.T) {
	t.Parallel()
	h, c, ctx := batchSetup(t)
	tgz := h.Tarball(t, nil)
	// Only acme's requests have a stream now.
	cfg := h.Assets.Requests.CachedInfo().Config
	cfg.Subjects = []string{jobs.TenantRequests("acme")}
	if _, err := h.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	var reqs []jobs.Request
	for i := range 6 {
		tenant := []string{"acme", "globex"}[i%2]
		r := jobstest.Request(tenant, "app")
		r.ID = fmt.Sprintf("%s-%d", tenant, i)
		reqs = append(reqs, r)
	}
	res, err := c.SubmitBatch(ctx, reqs, tgz)
	var berr *jobs.BatchError
	if !errors.As(err, &berr) || berr.Failed != 3 || berr.First != 1 {
		t.Fatalf("error %v, want a BatchError for the 3 globex requests", err)
	}
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("error %v, want no stream response among its causes", err)
	}

	// released reports whether key's last word is a delete: the bucket
	// keeps one revision per key, and only a release deletes one (a key
	// never written has no history).
	released := func(key string) bool {
		t.Helper()
		hist, err := h.Assets.SourceRefs.History(ctx, key)
		if err != nil {
			t.Fatalf("history of %s: %v", key, err)
		}
		return len(hist) > 0 && hist[len(hist)-1].Operation() == jetstream.KeyValueDelete
	}
	for i, r := range res {
		key := refKeyOf(tgz, reqs[i].Tenant, reqs[i].ID)
		if reqs[i].Tenant == "acme" {
			if r.Err != nil || r.Sequence == 0 {
				t.Fatalf("acme request #%d: %+v", i, r)
			}
			if _, err := h.Assets.SourceRefs.Get(ctx, key); err != nil {
				t.Fatalf("acme request #%d lost its reference: %v", i, err)
			}
			continue
		}
		if !errors.Is(r.Err, jetstream.ErrNoStreamResponse) || r.Sequence != 0 || r.ID != reqs[i].ID {
			t.Fatalf("globex request #%d: %+v", i, r)
		}
		if !released(key) {
			t.Fatalf("globex request #%d: reference not released", i)
		}
	}

	single := jobstest.Request("globex", "alone")
	single.ID = "globex-alone"
	if _, err := h.Client.Submit(ctx, single, tgz); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("Submit: %v, want no stream response", err)
	}
	if !released(refKeyOf(tgz, "globex", "globex-alone")) {
		t.Fatal("Submit did not release the reference of its failed publish")
	}
	if n := len(storedRequests(t, h, ctx)); n != 3 {
		t.Fatalf("the stream holds %d requests, want 3", n)
	}
}

// A batch of one is Submit's equal: a resubmitted id is a duplicate, also
// when it comes through the other call.
func TestSubmitBatchAndSubmitShareDeduplication(t *testing.T) {
	t.Parallel()
	h, c, ctx := batchSetup(t)
	tgz := h.Tarball(t, nil)
	req := jobstest.Request("acme", "shared")
	req.ID = "shared-id"
	sub, err := c.Submit(ctx, req, tgz)
	if err != nil || sub.Duplicate {
		t.Fatalf("Submit: %+v, %v", sub, err)
	}
	res, err := c.SubmitBatch(ctx, []jobs.Request{req}, tgz)
	if err != nil || !res[0].Duplicate || res[0].Sequence != sub.Sequence {
		t.Fatalf("SubmitBatch of a submitted id: %+v, %v; want a duplicate of sequence %d", res, err, sub.Sequence)
	}
	if res, err := c.SubmitBatch(ctx, nil, tgz); err != nil || len(res) != 0 {
		t.Fatalf("empty batch: %v, %v", res, err)
	}
	res, err = c.SubmitBatch(ctx, []jobs.Request{jobstest.Request("acme", "empty")}, nil)
	var verr *jobs.ValidationError
	if !errors.As(err, &verr) || verr.Field != "source" || res[0].ID == "" {
		t.Fatalf("empty tarball: %+v, %v", res, err)
	}
}
