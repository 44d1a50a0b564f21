package jobs

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/nats-io/nats.go/jetstream"
)

// testJetStream starts an embedded server for one test and returns it
// with a JetStream context over an in-process connection; both close
// when the test ends.
func testJetStream(t *testing.T) (*natsembed.Server, jetstream.JetStream) {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{Dir: filepath.Join(t.TempDir(), "nats"), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, js, err := srv.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return srv, js
}

func jobsKV(t *testing.T) jetstream.KeyValue {
	t.Helper()
	_, js := testJetStream(t)
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "FENCE_TEST"})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// A worker whose lease lapsed (paused, partitioned) while another took the
// job over is fenced: its next check and its next write both fail, so it
// makes no further call for the job.
func TestFencingStopsAWorkerThatLostItsLease(t *testing.T) {
	t.Parallel()
	kv := jobsKV(t)
	ctx := context.Background()
	now := time.Now()
	d := Delivery{Seq: 7, Submitted: now, Run: 1, First: true}

	a, created, err := StartJob(ctx, kv, "acme", "j1", d, "worker-a", now)
	if err != nil || !created {
		t.Fatalf("first start: created %t, %v", created, err)
	}
	if err := a.SaveStep(ctx, StepCreateProject, true, now); err != nil {
		t.Fatal(err)
	}

	// a stalls; its message is redelivered to b, which takes over.
	// It tries a create first, as for a first delivery, and reads a's.
	b, created, err := StartJob(ctx, kv, "acme", "j1", d, "worker-b", now)
	if err != nil || created {
		t.Fatalf("second start: created %t, %v", created, err)
	}
	if b.State.Step != StepCreateProject || b.State.Owner != "worker-a" || !b.Carries(d) {
		t.Fatalf("b read %+v", b.State)
	}
	if err := b.Claim(ctx, "worker-b", d, now); err != nil {
		t.Fatal(err)
	}

	if err := a.Verify(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale worker's fence check: %v, want ErrLeaseLost", err)
	}
	if err := a.SaveStep(ctx, StepAuthorize, true, now); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale worker's write: %v, want ErrLeaseLost", err)
	}
	if err := b.Verify(ctx); err != nil {
		t.Fatalf("owner's fence check: %v", err)
	}
	if err := b.SaveStep(ctx, StepAuthorize, true, now); err != nil {
		t.Fatalf("owner's write: %v", err)
	}
	// Another message of the id is a duplicate, not the job's carrier.
	if b.Carries(Delivery{Seq: 8, Run: 1}) {
		t.Fatal("a second message of the id carries the job")
	}
}

// A cancel written into the checkpoint while the owner works is merged:
// the owner keeps its lease and sees the request.
func TestCancelMarkIsNotATakeover(t *testing.T) {
	t.Parallel()
	kv := jobsKV(t)
	ctx := context.Background()
	cp, _, err := StartJob(ctx, kv, "acme", "j2", Delivery{Seq: 3, Run: 1}, "worker-a", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	noEvent := func(context.Context) (*Event, error) { return nil, nil }
	if _, err := requestCancel(ctx, kv, "acme", "j2", noEvent, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := cp.Verify(ctx); err != nil {
		t.Fatalf("verify after a cancel mark: %v", err)
	}
	if !cp.State.CancelRequested {
		t.Fatal("the owner did not see the cancel")
	}
	if err := cp.SaveStep(ctx, StepCreateProject, true, time.Now()); err != nil {
		t.Fatalf("save after a cancel mark: %v", err)
	}
	// A cancel that comes before the message is carried by it, and the
	// claim keeps the mark.
	st, err := requestCancel(ctx, kv, "acme", "early", noEvent, time.Now())
	if err != nil || st.Status != StatusQueued || !st.CancelRequested {
		t.Fatalf("cancel before the message: %+v, %v", st, err)
	}
	d := Delivery{Seq: 9, Run: 1, First: true}
	early, created, err := StartJob(ctx, kv, "acme", "early", d, "worker-a", time.Now())
	if err != nil || created || !early.Carries(d) {
		t.Fatalf("start after an early cancel: created %t, carries %t, %v", created, early.Carries(d), err)
	}
	if err := early.Claim(ctx, "worker-a", d, time.Now()); err != nil || !early.State.CancelRequested || early.State.Seq != 9 {
		t.Fatalf("claim after an early cancel: %+v, %v", early.State, err)
	}
}

// Workers read checkpoints and upload claims from the stream leader (a
// replica's stale answer would look like a takeover), while the buckets
// keep direct gets, the only read a tenant's credentials can be scoped to.
func TestCheckpointBucketReadsAreConsistent(t *testing.T) {
	t.Parallel()
	srv, js := testJetStream(t)
	ctx := context.Background()
	// A bucket an earlier version made without direct gets gets them back.
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketJobs}); err != nil {
		t.Fatal(err)
	}
	s, _ := js.Stream(ctx, "KV_"+BucketJobs)
	sc := s.CachedInfo().Config
	sc.AllowDirect = false
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	var assets *Assets
	var err error
	for range 2 { // a second worker's Setup changes nothing
		if assets, err = Setup(ctx, js, SetupConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, bucket := range []string{BucketJobs, BucketUploads} {
		s, err := js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		if c := s.CachedInfo().Config; !c.AllowDirect {
			t.Fatalf("%s refuses direct gets: tenant-scoped producers could not read", bucket)
		}
	}

	// Which API each read uses, seen by a second connection.
	spy, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(spy.Close)
	apiCalls, err := spy.SubscribeSync("$JS.API.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	nextAPICall := func() string {
		t.Helper()
		m, err := apiCalls.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return m.Subject
	}
	drain := func() { // skip the calls made so far
		if err := spy.Flush(); err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := apiCalls.NextMsg(50 * time.Millisecond); err != nil {
				return
			}
		}
	}

	for _, kv := range []jetstream.KeyValue{assets.Jobs, assets.Uploads} {
		key := "acme.read-" + kv.Bucket()
		drain()
		if _, err := kv.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("%s: missing key: %v, want ErrKeyNotFound", kv.Bucket(), err)
		}
		if got, want := nextAPICall(), "$JS.API.STREAM.MSG.GET.KV_"+kv.Bucket(); got != want {
			t.Fatalf("%s: worker read went to %s, want the leader (%s)", kv.Bucket(), got, want)
		}
		rev, err := kv.Create(ctx, key, []byte("v1"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		nextAPICall()
		if string(e.Value()) != "v1" || e.Revision() != rev || e.Key() != key || e.Bucket() != kv.Bucket() ||
			e.Operation() != jetstream.KeyValuePut || e.Created().IsZero() {
			t.Fatalf("%s: read %q rev %d key %q op %v, want v1 rev %d", kv.Bucket(), e.Value(), e.Revision(), e.Key(), e.Operation(), rev)
		}
		// The revision read is the one compare-and-set expects.
		if _, err := kv.Update(ctx, key, []byte("v2"), e.Revision()); err != nil {
			t.Fatalf("%s: update at the revision read: %v", kv.Bucket(), err)
		}
		if err := kv.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("%s: deleted key: %v, want ErrKeyNotFound", kv.Bucket(), err)
		}
		if _, err := kv.Put(ctx, key, []byte("v3")); err != nil {
			t.Fatal(err)
		}
		if err := kv.Purge(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("%s: purged key: %v, want ErrKeyNotFound", kv.Bucket(), err)
		}
	}

	// A producer's handle reads its own keys with a direct get.
	producer, err := js.KeyValue(ctx, BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	drain()
	if _, err := producer.Get(ctx, "acme.direct"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatal(err)
	}
	if got, want := nextAPICall(), "$JS.API.DIRECT.GET.KV_"+BucketJobs+".$KV."+BucketJobs+".acme.direct"; got != want {
		t.Fatalf("producer read went to %s, want %s", got, want)
	}
}

// A failed attempt counts unless it was a rate limit; the last one is
// reported exhausted without a write, the others are saved; the kept
// errors are bounded.
func TestAttemptFailed(t *testing.T) {
	t.Parallel()
	kv := jobsKV(t)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	cp, _, err := StartJob(ctx, kv, "acme", "tries", Delivery{Seq: 1, Run: 1, First: true}, "w", now)
	if err != nil {
		t.Fatal(err)
	}
	e := AttemptError{At: now, Step: StepCreateProject, Class: "transient", Message: "boom"}
	for i, want := range []bool{false, false, true} {
		exhausted, err := cp.AttemptFailed(ctx, e, true, 3, now)
		if err != nil || exhausted != want || cp.State.Attempts != i+1 {
			t.Fatalf("attempt %d: exhausted %t, attempts %d, %v", i+1, exhausted, cp.State.Attempts, err)
		}
	}
	stored, err := ReadState(ctx, kv, "acme", "tries")
	if err != nil || stored.Attempts != 2 || len(stored.Errors) != 2 {
		t.Fatalf("stored after the exhausting attempt: %+v, %v (want the two saved attempts)", stored, err)
	}
	for range maxKeptErrors + 5 {
		if exhausted, err := cp.AttemptFailed(ctx, e, false, 3, now); exhausted || err != nil {
			t.Fatalf("a rate limit: exhausted %t, %v", exhausted, err)
		}
	}
	if len(cp.State.Errors) != maxKeptErrors || cp.State.Attempts != 3 {
		t.Fatalf("%d errors kept and %d attempts, want %d and 3", len(cp.State.Errors), cp.State.Attempts, maxKeptErrors)
	}
}
