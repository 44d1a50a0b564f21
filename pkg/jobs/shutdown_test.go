package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// A worker stopped mid-build hands the job back with its checkpoint; the
// next worker resumes polling the same deployment instead of starting over.
func TestShutdownHandsBackAndNextWorkerResumes(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		NoWorkers: true,
		Sim:       vercelsim.Config{BuildTime: 2 * time.Second},
		Worker:    jobs.WorkerConfig{ShutdownGrace: 50 * time.Millisecond},
	})
	ctx, stop := context.WithCancel(context.Background())
	_, done := h.StartWorker(t, ctx)
	sub := h.Submit(t, request("acme", "resume"), h.Tarball(t, nil))

	wctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	w, err := h.Client.Watch(wctx, jobs.WatchFilter{Tenant: "acme", ID: sub.ID, FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev, err := range w.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Data.Step == jobs.StepCreateDeployment {
			break
		}
	}
	stop()
	select {
	case <-done:
	case <-wctx.Done():
		t.Fatal("worker did not stop after its grace period")
	}
	st, err := jobs.ReadState(wctx, h.Assets.Jobs, "acme", sub.ID)
	if err != nil || st == nil {
		t.Fatalf("state %v %v", st, err)
	}
	if st.Done() || st.DeploymentID == "" {
		t.Fatalf("after shutdown: status %s, deployment %q", st.Status, st.DeploymentID)
	}

	h.StartWorker(t, context.Background())
	ev := h.WaitTerminal(t, "acme", waitLong, sub.ID)[sub.ID]
	if ev.Type != jobs.TypeSucceeded || ev.Data.DeploymentID != st.DeploymentID {
		t.Fatalf("resumed job: %s, deployment %s (checkpoint had %s)", ev.Type, ev.Data.DeploymentID, st.DeploymentID)
	}
	stats := h.Sim.Stats()
	if stats.Requests[vercel.EndpointCreateProject] != 1 || stats.Requests[vercel.EndpointCreateDeployment] != 1 {
		t.Fatalf("steps repeated after resume: %v", stats.Requests)
	}
}

// A deployment whose tarball the team is believed to have, but does not,
// goes through the missing_files round trip and still deploys.
func TestMissingFilesRoundTrip(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	tgz := h.Tarball(t, map[string]string{"index.html": "<h1>hi</h1>"})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	// Pretend an earlier job uploaded it: the upload step is skipped.
	if _, err := h.Assets.Uploads.Put(ctx, "personal."+vercel.SHA1Hex(tgz), []byte("done")); err != nil {
		t.Fatal(err)
	}
	sub := h.Submit(t, request("acme", "static"), tgz)
	ev := h.WaitTerminal(t, "acme", waitLong, sub.ID)[sub.ID]
	if ev.Type != jobs.TypeSucceeded {
		t.Fatalf("%s %+v", ev.Type, ev.Data.Error)
	}
	stats := h.Sim.Stats()
	if stats.Uploads != 1 || stats.Responses[vercel.EndpointCreateDeployment][400] != 1 || stats.Requests[vercel.EndpointCreateDeployment] != 2 {
		t.Fatalf("want one missing_files answer then one upload: uploads %d, create deployment %v", stats.Uploads, stats.Responses[vercel.EndpointCreateDeployment])
	}
}
