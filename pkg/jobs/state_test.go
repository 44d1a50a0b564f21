package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/deployq/deployq/pkg/vercel"
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
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
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
	init := JobState{Version: stateVersion, ID: "j1", Tenant: "acme", Status: StatusRunning, Seq: 7, Run: 1}

	a, created, err := loadOrCreate(ctx, kv, init, true)
	if err != nil || !created {
		t.Fatalf("first load: created %t, %v", created, err)
	}
	if err := a.claim(ctx, "worker-a", now); err != nil {
		t.Fatal(err)
	}
	a.state.Step = StepCreateProject
	if err := a.save(ctx, now); err != nil {
		t.Fatal(err)
	}

	// a stalls; its message is redelivered to b, which takes over.
	// It tries a create first, as for a first delivery, and reads a's.
	b, created, err := loadOrCreate(ctx, kv, init, true)
	if err != nil || created {
		t.Fatalf("second load: created %t, %v", created, err)
	}
	if b.state.Step != StepCreateProject || b.state.Owner != "worker-a" {
		t.Fatalf("b read %+v", b.state)
	}
	if err := b.claim(ctx, "worker-b", now); err != nil {
		t.Fatal(err)
	}

	if err := a.verify(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale worker's fence check: %v, want ErrLeaseLost", err)
	}
	a.state.Step = StepAuthorize
	if err := a.save(ctx, now); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale worker's write: %v, want ErrLeaseLost", err)
	}
	if err := b.verify(ctx); err != nil {
		t.Fatalf("owner's fence check: %v", err)
	}
	b.state.Step = StepAuthorize
	if err := b.save(ctx, now); err != nil {
		t.Fatalf("owner's write: %v", err)
	}
}

// A cancel written into the checkpoint while the owner works is merged:
// the owner keeps its lease and sees the request.
func TestCancelMarkIsNotATakeover(t *testing.T) {
	t.Parallel()
	kv := jobsKV(t)
	ctx := context.Background()
	cp, _, err := loadOrCreate(ctx, kv, JobState{Version: stateVersion, ID: "j2", Tenant: "acme", Status: StatusRunning, Run: 1}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.claim(ctx, "worker-a", time.Now()); err != nil {
		t.Fatal(err)
	}
	// What Client.Cancel does.
	e, err := kv.Get(ctx, cp.key)
	if err != nil {
		t.Fatal(err)
	}
	var st JobState
	_ = json.Unmarshal(e.Value(), &st)
	st.CancelRequested = true
	data, _ := json.Marshal(st)
	if _, err := kv.Update(ctx, cp.key, data, e.Revision()); err != nil {
		t.Fatal(err)
	}

	if err := cp.verify(ctx); err != nil {
		t.Fatalf("verify after a cancel mark: %v", err)
	}
	if !cp.state.CancelRequested {
		t.Fatal("the owner did not see the cancel")
	}
	cp.state.Step = StepCreateProject
	if err := cp.save(ctx, time.Now()); err != nil {
		t.Fatalf("save after a cancel mark: %v", err)
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

// constantBackOff always answers d.
type constantBackOff time.Duration

func (c constantBackOff) NextBackOff() time.Duration { return time.Duration(c) }
func (constantBackOff) Reset()                       {}

// The retry rules the worker and Pipeline.Deploy share.
func TestFailedAttempt(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	boom := errors.New("boom")
	transient := vercel.Decision{Class: vercel.Transient, Reason: "server_error"}
	tests := []struct {
		name          string
		attempts      int
		d             vercel.Decision
		wantWait      time.Duration
		wantAttempts  int
		wantExhausted bool
		wantCapped    bool
	}{
		{"backoff longer than Retry-After", 0, vercel.Decision{Class: vercel.Transient, RetryAfter: time.Second}, 3 * time.Second, 1, false, false},
		{"Retry-After longer than backoff", 0, vercel.Decision{Class: vercel.Transient, RetryAfter: 9 * time.Second}, 9 * time.Second, 1, false, false},
		{"the last attempt", 2, transient, 0, 3, true, false},
		{"a rate limit is not an attempt", 2, vercel.Decision{Class: vercel.Transient, RateLimited: true, RetryAfter: 20 * time.Second}, 20 * time.Second, 2, false, false},
		{"an absurd wait is capped", 0, vercel.Decision{Class: vercel.Transient, RateLimited: true, RetryAfter: 5 * time.Hour}, time.Minute, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &JobState{Attempts: tt.attempts}
			wait, exhausted, capped := failedAttempt(st, StepCreateProject, boom, tt.d, 3, time.Minute, constantBackOff(3*time.Second), now)
			if wait != tt.wantWait || exhausted != tt.wantExhausted || capped != tt.wantCapped || st.Attempts != tt.wantAttempts {
				t.Fatalf("wait %s exhausted %t capped %t attempts %d, want %s %t %t %d",
					wait, exhausted, capped, st.Attempts, tt.wantWait, tt.wantExhausted, tt.wantCapped, tt.wantAttempts)
			}
			if len(st.Errors) != 1 || st.Errors[0].Message != "boom" || !st.Errors[0].At.Equal(now) {
				t.Fatalf("errors %+v", st.Errors)
			}
		})
	}
	// The kept errors are bounded.
	st := &JobState{}
	for range maxKeptErrors + 5 {
		failedAttempt(st, StepCreateProject, boom, vercel.Decision{Class: vercel.Transient, RateLimited: true}, 3, time.Minute, constantBackOff(0), now)
	}
	if len(st.Errors) != maxKeptErrors {
		t.Fatalf("%d errors kept, want %d", len(st.Errors), maxKeptErrors)
	}
}
