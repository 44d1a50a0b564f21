package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// A worker stopped (SIGTERM) with builds in flight hands the jobs back
// with their checkpoints once its grace period is over; the next worker
// resumes polling the same deployments instead of starting over: nothing
// lost, nothing doubled.
func TestShutdownHandsBackAndNextWorkerResumes(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		NoWorkers: true,
		Sim:       vercelsim.Config{BuildTime: 2 * time.Second},
		Worker:    worker.Config{ShutdownGrace: 50 * time.Millisecond},
	})
	ctx, stop := context.WithCancel(context.Background())
	_, done := h.StartWorker(t, ctx)
	tgz := h.Tarball(t, nil)
	var ids []string
	for i := range 5 {
		ids = append(ids, h.Submit(t, jobstest.Request("acme", fmt.Sprintf("resume%d", i)), tgz).ID)
	}

	wctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	jobstest.Eventually(t, waitLong, "builds never all started", func() bool {
		for _, id := range ids {
			st, err := jobs.ReadState(wctx, h.Assets.Jobs, "acme", id)
			if err != nil || st == nil || st.DeploymentID == "" {
				return false
			}
		}
		return true
	})
	stop()
	select {
	case <-done:
	case <-wctx.Done():
		t.Fatal("worker did not stop after its grace period")
	}
	deployments := map[string]string{}
	for _, id := range ids {
		st, err := jobs.ReadState(wctx, h.Assets.Jobs, "acme", id)
		if err != nil || st == nil || st.Done() {
			t.Fatalf("after shutdown %s: %+v %v", id, st, err)
		}
		deployments[id] = st.DeploymentID
	}

	h.StartWorker(t, context.Background())
	got := h.WaitTerminal(t, "acme", waitLong, ids...)
	for _, id := range ids {
		ev := got[id]
		if ev.Type != jobs.TypeSucceeded || ev.Data.DeploymentID != deployments[id] {
			t.Fatalf("%s resumed: %s, deployment %s (checkpoint had %s)", id, ev.Type, ev.Data.DeploymentID, deployments[id])
		}
		if n := len(terminalEvents(t, h, "acme", id)); n != 1 {
			t.Fatalf("%s: %d terminal events", id, n)
		}
	}
	stats := h.Sim.Stats()
	if stats.Requests[vercel.EndpointCreateProject] != len(ids) || stats.Requests[vercel.EndpointCreateDeployment] != len(ids) {
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
	sub := h.Submit(t, jobstest.Request("acme", "static"), tgz)
	ev := h.WaitTerminal(t, "acme", waitLong, sub.ID)[sub.ID]
	if ev.Type != jobs.TypeSucceeded {
		t.Fatalf("%s %+v", ev.Type, ev.Data.Error)
	}
	stats := h.Sim.Stats()
	if stats.Uploads != 1 || stats.Responses[vercel.EndpointCreateDeployment][400] != 1 || stats.Requests[vercel.EndpointCreateDeployment] != 2 {
		t.Fatalf("want one missing_files answer then one upload: uploads %d, create deployment %v", stats.Uploads, stats.Responses[vercel.EndpointCreateDeployment])
	}
}

// A worker stopped while its create-deployment call is unanswered leaves
// the build running, and a checkpoint from before the steps that ride
// along with the next save (connect, upload). The next worker re-runs
// those and must still treat the create as uncertain: it finds the build
// by the request id instead of starting a second one.
func TestTakeoverAfterUnsavedDeploymentAdoptsIt(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		NoWorkers: true,
		Sim: vercelsim.Config{BuildTime: 200 * time.Millisecond,
			Faults: map[vercel.Endpoint]vercelsim.Fault{vercel.EndpointCreateDeployment: {HangAfter: 1}}},
		Worker: worker.Config{ShutdownGrace: 50 * time.Millisecond},
	})
	ctx, stop := context.WithCancel(context.Background())
	_, done := h.StartWorker(t, ctx)
	id := h.Submit(t, jobstest.Request("acme", "unsaved"), h.Tarball(t, nil)).ID

	wctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	jobstest.Eventually(t, waitLong, "the deployment was never created", func() bool {
		return len(h.Sim.Deployments()) == 1
	})
	stop()
	select {
	case <-done:
	case <-wctx.Done():
		t.Fatal("worker did not stop after its grace period")
	}
	st, err := jobs.ReadState(wctx, h.Assets.Jobs, "acme", id)
	if err != nil || st == nil || st.DeploymentID != "" || st.Step != jobs.StepCreateDatabase {
		t.Fatalf("checkpoint after the stop: %+v %v; want the last save, after create_database", st, err)
	}

	h.Sim.SetFault(vercel.EndpointCreateDeployment, vercelsim.Fault{})
	h.StartWorker(t, context.Background())
	ev := h.WaitTerminal(t, "acme", waitLong, id)[id]
	created := h.Sim.Deployments()
	if ev.Type != jobs.TypeSucceeded || len(created) != 1 || ev.Data.DeploymentID != created[0].ID {
		t.Fatalf("after the takeover: %s with deployment %s; the simulator has %d deployments", ev.Type, ev.Data.DeploymentID, len(created))
	}
}
