package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/internal/syncbuf"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// queueDrained waits until the requests stream holds no message: every
// request settled (acked or terminated).
func queueDrained(t *testing.T, h *jobstest.Harness, timeout time.Duration, what string) {
	t.Helper()
	jobstest.Eventually(t, timeout, what, func() bool {
		info, err := h.Assets.Requests.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	})
}

func terminalEvents(t *testing.T, h *jobstest.Harness, tenant, id string) []jobs.Event {
	t.Helper()
	var out []jobs.Event
	for _, e := range h.Events(t, tenant, id) {
		if e.Terminal() {
			out = append(out, e)
		}
	}
	return out
}

// Each creating step whose answer is lost after the resource was created
// is resolved by finding the resource, never by creating a second one.
func TestLostAnswerOfEachCreatingStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ep      vercel.Endpoint
		created func(s vercelsim.Stats, req *jobs.Request) int
	}{
		{vercel.EndpointCreateProject, func(s vercelsim.Stats, r *jobs.Request) int { return s.ProjectsCreated[jobs.ProjectName(r)] }},
		{vercel.EndpointCreateStore, func(s vercelsim.Stats, r *jobs.Request) int { return s.StoresCreated[jobs.StoreName(r)] }},
		{vercel.EndpointCreateDeployment, func(s vercelsim.Stats, r *jobs.Request) int { return s.DeploymentsCreated[jobs.ProjectName(r)] }},
		{vercel.EndpointConnectStore, nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.ep), func(t *testing.T) {
			t.Parallel()
			h := jobstest.Start(t, jobstest.Config{Worker: worker.Config{MaxAttempts: 1000}})
			h.Sim.SetFault(tt.ep, vercelsim.Fault{ErrorAfter: 1})
			req := jobstest.Request("acme", "lost")
			req.ID = "lost-answer"
			h.Submit(t, req, h.Tarball(t, nil))
			// The resource exists and its creator was told it failed.
			jobstest.Eventually(t, 30*time.Second, "the first answer was never lost", func() bool {
				return h.Sim.Stats().Faults[tt.ep].ErrorAfter > 0
			})
			h.Sim.SetFault(tt.ep, vercelsim.Fault{})
			ev := h.WaitTerminal(t, "acme", waitLong, req.ID)[req.ID]
			if ev.Type != jobs.TypeSucceeded {
				t.Fatalf("%s %+v", ev.Type, ev.Data.Error)
			}
			stats := h.Sim.Stats()
			created := len(h.Sim.Connections())
			if tt.created != nil {
				created = tt.created(stats, &req)
			}
			if created != 1 {
				t.Fatalf("%s created %d times", tt.ep, created)
			}
			if n := stats.DeploymentsReady[jobs.ProjectName(&req)]; n != 1 {
				t.Fatalf("%d ready deployments", n)
			}
		})
	}
}

// A message for a request whose job already ended, arriving long after
// the stream's dedup window (here: published under another message id),
// returns nothing new: no deploy, no second terminal event.
func TestLateDuplicateMessageDoesNotDeployAgain(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	req := jobstest.Request("acme", "late")
	req.ID = "late-dup"
	h.Submit(t, req, h.Tarball(t, nil))
	h.WaitTerminal(t, "acme", waitLong, req.ID)

	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	st, err := jobs.ReadState(ctx, h.Assets.Jobs, "acme", req.ID)
	if err != nil || st == nil {
		t.Fatal(st, err)
	}
	// Bypass the client's own check, as any NATS producer could.
	raw := fmt.Sprintf(`{"version":1,"id":%q,"tenant":"acme","name":"late","source":{"bucket":%q,"sha1":%q,"size":10}}`,
		req.ID, jobs.BucketSources, strings.Repeat("a", 40))
	if _, err := h.JS.Publish(ctx, jobs.RequestSubject("acme", req.ID), []byte(raw)); err != nil {
		t.Fatal(err)
	}
	queueDrained(t, h, waitLong, "the duplicate was never settled")
	if n := len(terminalEvents(t, h, "acme", req.ID)); n != 1 {
		t.Fatalf("%d terminal events", n)
	}
	if n := h.Sim.Stats().ProjectsCreated[jobs.ProjectName(&req)]; n != 1 {
		t.Fatalf("project created %d times", n)
	}
}

func TestCancelQueuedJob(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true})
	req := jobstest.Request("acme", "never")
	sub := h.Submit(t, req, h.Tarball(t, nil))
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := h.Client.Cancel(ctx, "acme", sub.ID); err != nil {
		t.Fatal(err)
	}
	h.StartWorker(t, context.Background())
	ev := h.WaitTerminal(t, "acme", waitLong, sub.ID)[sub.ID]
	if ev.Type != jobs.TypeCancelled || len(ev.Data.Cleaned) != 0 {
		t.Fatalf("%s cleaned %v", ev.Type, ev.Data.Cleaned)
	}
	if calls := jobCalls(h, 1); len(calls) != 0 {
		t.Fatalf("a cancelled queued job called the API: %v", calls)
	}
	assertQueueEmpty(t, h)
	if _, err := h.Client.Cancel(ctx, "acme", sub.ID); err == nil || !strings.Contains(err.Error(), "already finished") {
		t.Fatalf("second cancel: %v", err)
	}
}

func TestCancelRunningJob(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Sim: vercelsim.Config{BuildTime: time.Minute}})
	sub := h.Submit(t, jobstest.Request("acme", "stopme"), h.Tarball(t, nil))
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	jobstest.Eventually(t, waitLong, "the build never started", func() bool {
		st, err := jobs.ReadState(ctx, h.Assets.Jobs, "acme", sub.ID)
		return err == nil && st != nil && st.Step == jobs.StepCreateDeployment
	})
	if _, err := h.Client.Cancel(ctx, "acme", sub.ID); err != nil {
		t.Fatal(err)
	}
	ev := h.WaitTerminal(t, "acme", waitLong, sub.ID)[sub.ID]
	if ev.Type != jobs.TypeCancelled || ev.Data.Step != jobs.StepWaitReady || strings.Join(ev.Data.Cleaned, ",") != "database,project" {
		t.Fatalf("%s at %s, cleaned %v", ev.Type, ev.Data.Step, ev.Data.Cleaned)
	}
	if n := len(h.Sim.Projects()); n != 0 {
		t.Fatalf("%d projects left", n)
	}
	if n := len(terminalEvents(t, h, "acme", sub.ID)); n != 1 {
		t.Fatalf("%d terminal events", n)
	}
	assertQueueEmpty(t, h)
	if dls := deadLetters(t, h, "acme"); len(dls) != 0 {
		t.Fatalf("a cancel is not a dead letter: %+v", dls)
	}
}

func TestReplayFromDLQKeepsTheID(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Worker: worker.Config{MaxAttempts: 2}})
	h.Sim.SetFault(vercel.EndpointTransferRequest, vercelsim.Fault{ErrorBefore: 1})
	req := jobstest.Request("acme", "again")
	req.ID = "replay-me"
	h.Submit(t, req, h.Tarball(t, nil))
	first := h.WaitTerminal(t, "acme", waitLong, req.ID)[req.ID]
	if first.Type != jobs.TypeFailed || first.Data.Error.Code != "retries_exhausted" {
		t.Fatalf("first run: %s %+v", first.Type, first.Data.Error)
	}
	h.Sim.SetFault(vercel.EndpointTransferRequest, vercelsim.Fault{})

	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	sub, err := h.Client.Replay(ctx, "acme", req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sub.ID != req.ID {
		t.Fatalf("replayed as %s", sub.ID)
	}
	jobstest.Eventually(t, waitLong, "the replay never succeeded", func() bool {
		st, err := jobs.ReadState(ctx, h.Assets.Jobs, "acme", req.ID)
		return err == nil && st != nil && st.Status == jobs.StatusSucceeded && len(terminalEvents(t, h, "acme", req.ID)) == 2
	})
	assertQueueEmpty(t, h)
	terms := terminalEvents(t, h, "acme", req.ID)
	if len(terms) != 2 || terms[0].Type != jobs.TypeFailed || terms[1].Type != jobs.TypeSucceeded || terms[1].Data.Run != 2 {
		t.Fatalf("terminal events %+v", terms)
	}
	if _, err := h.Client.Replay(ctx, "acme", "no-such-id"); !errors.Is(err, jobs.ErrNoDeadLetter) {
		t.Fatalf("replay of an unknown id: %v", err)
	}
	if _, err := h.Client.Replay(ctx, "acme", req.ID); !errors.Is(err, jobs.ErrFinished) {
		t.Fatalf("replay of a job that succeeded since: %v", err)
	}
	n, err := h.Client.PurgeDeadLetters(ctx, "acme")
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v", n, err)
	}
	if dls := deadLetters(t, h, "acme"); len(dls) != 0 {
		t.Fatalf("%d dead letters after purge", len(dls))
	}
}

// A request whose deliveries all end without an outcome is moved to the
// DLQ by the MAX_DELIVERIES advisory, with a failed event.
func TestMaxDeliveriesAdvisoryDeadLetters(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		NoWorkers: true,
		Setup:     jobs.SetupConfig{MaxDeliver: 1, AckWait: time.Second},
	})
	sub := h.Submit(t, jobstest.Request("acme", "cursed"), h.Tarball(t, nil))
	// A worker that takes the request and dies without a word.
	batch, err := h.Lane(t, "acme").Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}
	h.StartWorker(t, context.Background())
	ev := h.WaitTerminal(t, "acme", waitLong, sub.ID)[sub.ID]
	if ev.Type != jobs.TypeFailed || ev.Data.Error.Code != "max_deliveries" {
		t.Fatalf("%s %+v", ev.Type, ev.Data.Error)
	}
	dls := deadLetters(t, h, "acme")
	if len(dls) != 1 || dls[0].Reason != jobs.DLQReasonMaxDeliveries || dls[0].ID != sub.ID {
		t.Fatalf("dead letters %+v", dls)
	}
	queueDrained(t, h, waitLong, "the request stayed in the work queue")
}

// A revoked token stops the worker taking work instead of failing the
// queue; it resumes by itself when the token works again.
func TestRejectedCredentialsPauseTheWorker(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		Sim:    vercelsim.Config{Token: jobstest.VercelToken},
		Worker: worker.Config{CredentialsProbeInterval: 50 * time.Millisecond, MaxAttempts: 1},
	})
	w := h.Workers[0]
	jobstest.Eventually(t, waitLong, "worker never ready", w.Ready)
	h.Sim.SetToken("rotated")
	sub := h.Submit(t, jobstest.Request("acme", "paused"), h.Tarball(t, nil))
	jobstest.Eventually(t, waitLong, "worker kept taking work with a refused token", func() bool { return !w.Ready() && !w.CredentialsOK() })

	more := h.Submit(t, jobstest.Request("acme", "queued"), h.Tarball(t, nil))
	h.Sim.SetToken(jobstest.VercelToken)
	got := h.WaitTerminal(t, "acme", waitLong, sub.ID, more.ID)
	for id, ev := range got {
		if ev.Type != jobs.TypeSucceeded {
			t.Fatalf("%s: %s %+v", id, ev.Type, ev.Data.Error)
		}
	}
	if !w.Ready() {
		t.Fatal("worker not ready after the token works again")
	}
	if dls := deadLetters(t, h, "acme"); len(dls) != 0 {
		t.Fatalf("credential trouble dead-lettered %d requests", len(dls))
	}
}

// One endpoint refusing the token (403) while the token works elsewhere
// fails the jobs that need it, with the API's reason, and stops nothing
// else: no pause of the fleet, no step run again in a loop.
func TestOneEndpointsRefusalFailsOnlyItsJobs(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		Sim:    vercelsim.Config{Quirks: vercelsim.Quirks{Forbidden: []vercel.Endpoint{vercel.EndpointConnectStore}}},
		Worker: worker.Config{CredentialsProbeInterval: 50 * time.Millisecond},
	})
	w := h.Workers[0]
	refused := deployEach(t, h, "refused", 3)
	for id, ev := range refused {
		if ev.Type != jobs.TypeFailed || ev.Data.Error == nil || ev.Data.Error.Code != "forbidden" || ev.Data.Error.Step != jobs.StepConnectDatabase {
			t.Fatalf("%s: %s %+v, want failed at connect_database with forbidden", id, ev.Type, ev.Data.Error)
		}
	}
	if !w.CredentialsOK() || !w.Ready() {
		t.Fatal("one endpoint's refusal paused the worker")
	}
	if n := h.Sim.Stats().Requests[vercel.EndpointConnectStore]; n != len(refused) {
		t.Fatalf("%d connect calls for %d jobs: the refused step ran again", n, len(refused))
	}
}

// A worker checks its token when it starts: with a good one it reports
// credentials_ok 1 before any job; with a refused one it never becomes
// ready, takes no request, and starts once the token works.
func TestCredentialsCheckedAtStart(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := jobstest.Start(t, jobstest.Config{
		Sim: vercelsim.Config{Token: "other-token"},
		Worker: worker.Config{CredentialsProbeInterval: 50 * time.Millisecond,
			Metrics: metrics.New(reg, metrics.BuildInfo{})},
	})
	gauge := func(name string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s", name)
		return 0
	}
	w := h.Workers[0]
	jobstest.Eventually(t, waitLong, "the refused token was not noticed at start", func() bool {
		return !w.CredentialsOK() && h.Sim.Stats().Responses[vercel.EndpointGetProject][401] > 0
	})
	if w.Ready() || gauge("deployq_vercel_credentials_ok") != 0 || gauge("deployq_worker_ready") != 0 {
		t.Fatal("a worker whose token is refused reports ready")
	}
	sub := h.Submit(t, jobstest.Request("acme", "waits-for-token"), h.Tarball(t, nil))
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	// The consumer counts the new request a moment after the publish.
	jobstest.Eventually(t, waitLong, "the request never showed as pending", func() bool {
		ci, err := h.Lane(t, "acme").Info(ctx)
		return err == nil && ci.NumPending+uint64(ci.NumAckPending) == 1
	})
	if ci, err := h.Lane(t, "acme").Info(ctx); err != nil || ci.NumAckPending != 0 || ci.NumPending != 1 {
		t.Fatalf("a worker with a refused token took work: pending %d, delivered %d, %v", ci.NumPending, ci.NumAckPending, err)
	}
	h.Sim.SetToken(jobstest.VercelToken)
	if ev := h.WaitTerminal(t, "acme", waitLong, sub.ID)[sub.ID]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("%s %+v", ev.Type, ev.Data.Error)
	}
	if !w.Ready() || gauge("deployq_vercel_credentials_ok") != 1 || gauge("deployq_worker_ready") != 1 {
		t.Fatal("not ready after the token works")
	}

	// A healthy worker reads 1 before its first job.
	reg2 := prometheus.NewRegistry()
	h2 := jobstest.Start(t, jobstest.Config{Worker: worker.Config{Metrics: metrics.New(reg2, metrics.BuildInfo{})}})
	jobstest.Eventually(t, waitLong, "healthy worker never ready", h2.Workers[0].Ready)
	reg = reg2
	if gauge("deployq_vercel_credentials_ok") != 1 {
		t.Fatal("credentials_ok is 0 on a healthy worker before its first job")
	}
}

// A cancel that comes before its request: the request, once submitted,
// never runs and ends cancelled.
func TestCancelBeforeSubmit(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := h.Client.Cancel(ctx, "acme", "early-cancel"); err != nil {
		t.Fatal(err)
	}
	req := jobstest.Request("acme", "early")
	req.ID = "early-cancel"
	if sub := h.Submit(t, req, h.Tarball(t, nil)); sub.Duplicate {
		t.Fatal("the submit after a cancel was taken for a duplicate")
	}
	ev := h.WaitTerminal(t, "acme", waitLong, req.ID)[req.ID]
	if ev.Type != jobs.TypeCancelled || ev.Data.DurationMs < 0 || ev.Data.DurationMs > waitLong.Milliseconds() {
		t.Fatalf("%s after %d ms", ev.Type, ev.Data.DurationMs)
	}
	if calls := jobCalls(h, 1); len(calls) != 0 {
		t.Fatalf("a cancelled request called the API: %v", calls)
	}
}

// Cancel and replay refuse what has ended for good.
func TestCancelAndReplayRefuseFinishedJobs(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	// Rejected: bad input.
	if _, err := h.JS.Publish(ctx, jobs.RequestSubject("acme", "bad-one"), []byte(`{"version":1,"id":"bad-one","tenant":"acme"}`)); err != nil {
		t.Fatal(err)
	}
	h.WaitTerminal(t, "acme", waitLong, "bad-one")
	if _, err := h.Client.Cancel(ctx, "acme", "bad-one"); !errors.Is(err, jobs.ErrFinished) {
		t.Fatalf("cancel of a rejected request: %v", err)
	}
	// Succeeded.
	req := jobstest.Request("acme", "done")
	req.ID = "done-one"
	h.Submit(t, req, h.Tarball(t, nil))
	h.WaitTerminal(t, "acme", waitLong, req.ID)
	if _, err := h.Client.Cancel(ctx, "acme", req.ID); !errors.Is(err, jobs.ErrFinished) {
		t.Fatalf("cancel of a succeeded job: %v", err)
	}
}

// A worker that cannot pull from the requests stream is not ready, and is
// again once the stream is back (it recreates the consumer itself).
func TestNotReadyWhileTheQueueIsGone(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Worker: worker.Config{PullWait: 50 * time.Millisecond}})
	w := h.Workers[0]
	jobstest.Eventually(t, waitLong, "never ready", w.Ready)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := h.JS.DeleteStream(ctx, jobs.StreamRequests); err != nil {
		t.Fatal(err)
	}
	jobstest.Eventually(t, waitLong, "still ready with no requests stream", func() bool { return !w.Ready() && !w.Pulling() })
	if _, err := jobs.Setup(ctx, h.JS, jobs.SetupConfig{}); err != nil {
		t.Fatal(err)
	}
	jobstest.Eventually(t, waitLong, "not ready after the stream came back", w.Ready)
	sub := h.Submit(t, jobstest.Request("acme", "after-outage"), h.Tarball(t, nil))
	if ev := h.WaitTerminal(t, "acme", waitLong, sub.ID)[sub.ID]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("%s %+v", ev.Type, ev.Data.Error)
	}
}

// A worker whose consumers were deleted (a tenant's, and the shared one
// of requests in the old subject form) creates them again as Setup
// defines them, and the requests queued meanwhile run.
func TestDeletedConsumerIsRecreated(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Worker: worker.Config{PullWait: 50 * time.Millisecond}})
	jobstest.Eventually(t, waitLong, "never ready", h.Workers[0].Ready)
	first := h.Submit(t, jobstest.Request("acme", "before-delete"), h.Tarball(t, nil))
	if ev := h.WaitTerminal(t, "acme", waitLong, first.ID)[first.ID]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("%s %+v", ev.Type, ev.Data.Error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for _, name := range []string{jobs.TenantConsumer("acme"), jobs.ConsumerWorkers} {
		if err := h.JS.DeleteConsumer(ctx, jobs.StreamRequests, name); err != nil {
			t.Fatal(err)
		}
	}
	sub := h.Submit(t, jobstest.Request("acme", "after-delete"), h.Tarball(t, nil))
	if ev := h.WaitTerminal(t, "acme", waitLong, sub.ID)[sub.ID]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("%s %+v", ev.Type, ev.Data.Error)
	}
	// The shared consumer comes back once a request in the old form is
	// there to take, and that request is rejected with a reason.
	if _, err := h.JS.Publish(ctx, "deploy.requests.acme", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	jobstest.Eventually(t, waitLong, "the shared consumer was not recreated", func() bool {
		_, err := h.JS.Consumer(ctx, jobs.StreamRequests, jobs.ConsumerWorkers)
		return err == nil
	})
	for _, name := range []string{jobs.TenantConsumer("acme"), jobs.ConsumerWorkers} {
		c, err := h.JS.Consumer(ctx, jobs.StreamRequests, name)
		if err != nil {
			t.Fatalf("consumer %s was not recreated: %v", name, err)
		}
		if cfg := c.CachedInfo().Config; cfg.AckPolicy != jetstream.AckExplicitPolicy || cfg.AckWait != h.Assets.Config.AckWait {
			t.Fatalf("recreated consumer %s differs from Setup's: %+v", name, cfg)
		}
	}
}

// A fleet upgraded from a version whose shared consumer took every
// request: the consumer is narrowed to the old subject form (here, after
// an old worker set it back), and each tenant's lane is made.
func TestOldSharedConsumerIsNarrowed(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	jobstest.Eventually(t, waitLong, "never ready", h.Workers[0].Ready)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	old := h.Assets.Consumer.CachedInfo().Config
	old.FilterSubject = jobs.AllRequests
	if _, err := h.JS.UpdateConsumer(ctx, jobs.StreamRequests, old); err != nil {
		t.Fatal(err)
	}
	sub := h.Submit(t, jobstest.Request("acme", "after-upgrade"), h.Tarball(t, nil))
	if ev := h.WaitTerminal(t, "acme", waitLong, sub.ID)[sub.ID]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("%s %+v", ev.Type, ev.Data.Error)
	}
	c, err := h.JS.Consumer(ctx, jobs.StreamRequests, jobs.ConsumerWorkers)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.CachedInfo().Config.FilterSubject; f != "deploy.requests.*" {
		t.Fatalf("the shared consumer filters %q, want deploy.requests.*", f)
	}
}

// Builds far longer than the lease keep their single delivery: the worker's
// heartbeats extend every held message's lease, several jobs at once.
func TestHeartbeatsKeepLongJobsOnOneDelivery(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		Sim:   vercelsim.Config{BuildTime: 3 * time.Second},
		Setup: jobs.SetupConfig{AckWait: time.Second},
		// The first poll at the build's end: the job waits 3 s in one go.
		Pipeline: worker.PipelineConfig{ExpectedBuild: 3 * time.Second},
	})
	var ids []string
	for i := range 3 {
		ids = append(ids, h.Submit(t, jobstest.Request("acme", "long-"+strconv.Itoa(i)), h.Tarball(t, nil)).ID)
	}
	for id, ev := range h.WaitTerminal(t, "acme", waitLong, ids...) {
		if ev.Type != jobs.TypeSucceeded || ev.Data.Attempt != 1 {
			t.Errorf("%s: %s on delivery %d, want succeeded on the first", id, ev.Type, ev.Data.Attempt)
		}
	}
	if ci := h.LaneInfo(t, "acme"); ci.NumRedelivered != 0 {
		t.Fatalf("redelivered %+v", ci)
	}
}

// gateLimiter holds every deployments.create call at the gate until it
// opens, and says when the first one arrives.
type gateLimiter struct {
	arrived chan struct{}
	once    sync.Once
	open    chan struct{}
}

func (g *gateLimiter) Wait(ctx context.Context, ep vercel.Endpoint) error {
	if ep != vercel.EndpointCreateDeployment {
		return nil
	}
	g.once.Do(func() { close(g.arrived) })
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gateLimiter) Observe(vercel.Endpoint, int, vercel.RateLimit, error) {}

// A worker that waited for budget while another worker took its job over
// must not create the deployment when the wait ends: the fence runs again
// right before the creating call is sent, not only before the step. Else
// both create one (the second deployment a long chaos run once showed).
func TestNoCreateAfterTheLeaseWasLostDuringABudgetWait(t *testing.T) {
	t.Parallel()
	const ackWait = 2 * time.Second
	gate := &gateLimiter{arrived: make(chan struct{}), open: make(chan struct{})}
	var logs syncbuf.Buffer
	h := jobstest.Start(t, jobstest.Config{
		Setup:      jobs.SetupConfig{AckWait: ackWait},
		NewLimiter: func(testing.TB, jetstream.JetStream) vercel.Limiter { return gate },
		Worker:     worker.Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	req := jobstest.Request("acme", "gated")
	req.ID = "gated-1"
	h.Submit(t, req, h.Tarball(t, nil))
	select {
	case <-gate.arrived:
	case <-ctx.Done():
		t.Fatal("create_deployment never reached the budget")
	}
	// Another worker claims the job, as one does after a redelivery.
	e, err := h.Assets.Jobs.Get(ctx, "acme."+req.ID)
	if err != nil {
		t.Fatal(err)
	}
	var st jobs.JobState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		t.Fatal(err)
	}
	st.Owner, st.Lease = "another-worker", st.Lease+1
	data, _ := json.Marshal(st)
	if _, err := h.Assets.Jobs.Update(ctx, "acme."+req.ID, data, e.Revision()); err != nil {
		t.Fatal(err)
	}
	// The waiting delivery's lease must no longer be fresh (AckWait/2
	// after its pull) for the fence to read: this ages it, it waits on no
	// outcome.
	<-time.After(ackWait)
	close(gate.open)
	// The waiting delivery stops as soon as it learns the job is lost;
	// by then it must have created nothing (without the fence it creates
	// the deployment, then learns it when it saves).
	jobstest.Eventually(t, waitLong, "the waiting delivery never stopped", func() bool {
		return strings.Contains(logs.String(), "another worker took this job over")
	})
	if n := h.Sim.Stats().DeploymentsCreated[jobs.ProjectName(&req)]; n != 0 {
		t.Fatalf("the delivery that lost the job created %d deployments", n)
	}
	if ev := h.WaitTerminal(t, "acme", waitLong, req.ID)[req.ID]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("%s %+v", ev.Type, ev.Data.Error)
	}
	if n := h.Sim.Stats().DeploymentsCreated[jobs.ProjectName(&req)]; n != 1 {
		t.Fatalf("%d deployments created, want 1", n)
	}
}

// A failed job's clean-up deletes the project before the database: an
// API that refuses to delete a database still connected to a project
// (as Vercel's CLI refuses to) deletes both.
func TestCleanUpDeletesTheProjectFirst(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Sim: vercelsim.Config{Quirks: vercelsim.Quirks{RefuseConnectedStoreDelete: true}}})
	id := h.Submit(t, jobstest.Request("acme", "broken"), jobstest.FailingTarball(t, "type error")).ID
	ev := h.WaitTerminal(t, "acme", waitLong, id)[id]
	if ev.Type != jobs.TypeFailed || !slices.Contains(ev.Data.Cleaned, "project") || !slices.Contains(ev.Data.Cleaned, "database") {
		t.Fatalf("failed build: %s, cleaned %v; want project and database deleted", ev.Type, ev.Data.Cleaned)
	}
	if st := h.Sim.Stats(); st.Responses[vercel.EndpointDeleteStore][400] != 0 {
		t.Fatalf("the database was deleted while connected: %v", st.Responses[vercel.EndpointDeleteStore])
	}
}

// The billing authorization's answers, as Vercel's CLI reads them: a
// pending one is asked again until it succeeds; requires_action and
// failed end the job with a typed reason saying what a person must do;
// no authorization state at all is retried, then fails.
func TestAuthorizationAnswers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		quirk vercelsim.AuthorizationQuirk
		want  jobs.EventType
		code  string
	}{
		{vercelsim.AuthorizationPending, jobs.TypeSucceeded, ""},
		{vercelsim.AuthorizationRequiresAction, jobs.TypeFailed, "authorization_requires_action"},
		{vercelsim.AuthorizationFailed, jobs.TypeFailed, "authorization_failed"},
		{vercelsim.AuthorizationNull, jobs.TypeFailed, "retries_exhausted"},
	} {
		t.Run(string(c.quirk), func(t *testing.T) {
			t.Parallel()
			h := jobstest.Start(t, jobstest.Config{
				Sim:    vercelsim.Config{Quirks: vercelsim.Quirks{Authorization: c.quirk, PendingPolls: 3}},
				Worker: worker.Config{MaxAttempts: 2},
			})
			id := h.Submit(t, jobstest.Request("acme", "auth"), h.Tarball(t, nil)).ID
			ev := h.WaitTerminal(t, "acme", waitLong, id)[id]
			if ev.Type != c.want || (c.code != "" && (ev.Data.Error == nil || ev.Data.Error.Code != c.code)) {
				t.Fatalf("%s: %s %+v, want %s %s", c.quirk, ev.Type, ev.Data.Error, c.want, c.code)
			}
			if c.quirk == vercelsim.AuthorizationRequiresAction && !strings.Contains(ev.Data.Error.Message, "https://vercel.com/api/marketplace/cli?") {
				t.Fatalf("requires_action names no page to open: %q", ev.Data.Error.Message)
			}
			if c.want == jobs.TypeFailed && ev.Data.Error.Step != jobs.StepAuthorize {
				t.Fatalf("failed at %s, want authorize", ev.Data.Error.Step)
			}
		})
	}
}

// A 429 builds_rate_limited (the team's concurrent builds are full) is
// waited on with the backoff, spending no attempt and pausing no budget:
// every deploy goes through once a build slot frees.
func TestBuildsFullIsWaitedOn(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		Sim:    vercelsim.Config{BuildTime: 200 * time.Millisecond, ConcurrentBuilds: 1, Quirks: vercelsim.Quirks{BuildsFull: true}},
		Worker: worker.Config{MaxAttempts: 1, Concurrency: 4},
	})
	requireSucceededAll(t, deployEach(t, h, "full", 3))
	if n := h.Sim.Stats().Responses[vercel.EndpointCreateDeployment][429]; n == 0 {
		t.Fatal("no deployment was refused for full builds: the test did not test")
	}
}

// An API without the Prisma guide's store route (410) creates stores
// through the documented …/integration/direct route, which authorizes by
// itself: the deploys go through, and once the client learned it, no
// authorization is asked for.
func TestStoreRouteFallsBackToTheDocumentedOne(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Sim: vercelsim.Config{Quirks: vercelsim.Quirks{StoreRouteGone: true}}, Worker: worker.Config{Concurrency: 1}})
	requireSucceededAll(t, deployEach(t, h, "direct", 3))
	st := h.Sim.Stats()
	if gone := st.Responses[vercel.EndpointCreateStore][410]; gone != 1 {
		t.Fatalf("the guide's route was tried %d times, want once", gone)
	}
	if auth := st.Requests[vercel.EndpointAuthorize]; auth != 1 {
		t.Fatalf("%d authorizations asked for, want only the first job's", auth)
	}
}

// The waits for full builds have an end: past MaxBuildsFullWait the job
// fails with builds_rate_limited, for a person to look at what holds the
// team's builds.
func TestBuildsFullWaitHasAnEnd(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		Sim:    vercelsim.Config{BuildTime: time.Minute, ConcurrentBuilds: 1, Quirks: vercelsim.Quirks{BuildsFull: true}},
		Worker: worker.Config{Concurrency: 2, MaxBuildsFullWait: time.Millisecond},
	})
	tgz := h.Tarball(t, nil)
	first := h.Submit(t, jobstest.Request("acme", "holds-the-build"), tgz).ID
	jobstest.Eventually(t, waitLong, "the first build never started", func() bool { return len(h.Sim.Deployments()) == 1 })
	second := h.Submit(t, jobstest.Request("acme", "waits"), tgz).ID
	ev := h.WaitTerminal(t, "acme", waitLong, second)[second]
	if ev.Type != jobs.TypeFailed || ev.Data.Error == nil || ev.Data.Error.Code != vercel.CodeBuildsRateLimited || ev.Data.Error.Step != jobs.StepCreateDeployment {
		t.Fatalf("%s: %s %+v, want failed at create_deployment with builds_rate_limited", second, ev.Type, ev.Data.Error)
	}
	if _, err := h.Client.Cancel(t.Context(), "acme", first); err != nil {
		t.Fatal(err)
	}
}

// deployEach submits n requests of tenant acme named prefix-0… and
// returns their terminal events.
func deployEach(t *testing.T, h *jobstest.Harness, prefix string, n int) map[string]jobs.Event {
	t.Helper()
	tgz := h.Tarball(t, nil)
	var ids []string
	for i := range n {
		ids = append(ids, h.Submit(t, jobstest.Request("acme", fmt.Sprint(prefix, "-", i)), tgz).ID)
	}
	return h.WaitTerminal(t, "acme", waitLong, ids...)
}

// requireSucceededAll fails the test unless every event is a success.
func requireSucceededAll(t *testing.T, evs map[string]jobs.Event) {
	t.Helper()
	for id, ev := range evs {
		if ev.Type != jobs.TypeSucceeded {
			t.Fatalf("%s: %s %+v", id, ev.Type, ev.Data.Error)
		}
	}
}
