package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/nats-io/nats.go/jetstream"
)

func jobsKV(t *testing.T) jetstream.KeyValue {
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
	js, _ := jetstream.New(nc)
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

	a, err := loadOrCreate(ctx, kv, init)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.claim(ctx, "worker-a", now); err != nil {
		t.Fatal(err)
	}
	a.state.Step = StepCreateProject
	if err := a.save(ctx, now); err != nil {
		t.Fatal(err)
	}

	// a stalls; its message is redelivered to b, which takes over.
	b, err := loadOrCreate(ctx, kv, init)
	if err != nil {
		t.Fatal(err)
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
	cp, err := loadOrCreate(ctx, kv, JobState{Version: stateVersion, ID: "j2", Tenant: "acme", Status: StatusRunning, Run: 1})
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

// Checkpoints are read from the stream leader: a replica's stale answer
// would look like a takeover.
func TestCheckpointBucketReadsAreConsistent(t *testing.T) {
	t.Parallel()
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
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	for range 2 { // a second worker's Setup must not turn direct gets back on
		if _, err := Setup(ctx, js, SetupConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, bucket := range []string{BucketJobs, BucketUploads} {
		s, err := js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		if c := s.CachedInfo().Config; c.AllowDirect || c.MirrorDirect {
			t.Fatalf("%s allows direct gets: reads may come from a stale replica", bucket)
		}
	}
}
