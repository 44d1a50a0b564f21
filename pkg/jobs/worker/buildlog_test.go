package worker_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/prometheus/client_golang/prometheus"
)

// A build whose log someone follows is streamed, and its lines reach the
// follower in order, on core NATS.
func TestFollowedBuildLogReachesItsFollower(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Sim: vercelsim.Config{BuildTime: 300 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	f, err := h.Client.FollowLogs(ctx, "acme", "logged")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	req := jobstest.Request("acme", "logged")
	req.ID = "logged"
	h.Submit(t, req, h.Tarball(t, nil))
	var texts []string
	seq := 0
	for l := range f.Lines() {
		if l.RequestID != "logged" || l.Tenant != "acme" || l.Seq != seq+1 {
			t.Fatalf("line %+v after seq %d", l, seq)
		}
		seq = l.Seq
		texts = append(texts, l.Text)
		if strings.HasPrefix(l.Text, "Build Completed") {
			break
		}
	}
	if len(texts) < 4 || !strings.HasPrefix(texts[0], "Running build in") {
		t.Errorf("lines %q", texts)
	}
	if ev := h.WaitTerminal(t, "acme", waitLong, "logged")["logged"]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("deploy: %s", ev.Type)
	}
	if n := h.Sim.Stats().Requests[vercel.EndpointDeploymentEvents]; n < 1 {
		t.Errorf("%d event streams: a followed build must be streamed", n)
	}
}

// A failed build's last lines travel in its failed event, read once when
// nobody followed the build.
func TestFailedBuildCarriesItsLastLines(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	id := h.Submit(t, jobstest.Request("acme", "broken"), jobstest.FailingTarball(t, "Module not found: can't resolve 'left-pad'")).ID
	ev := h.WaitTerminal(t, "acme", waitLong, id)[id]
	if ev.Type != jobs.TypeFailed || ev.Data.Error == nil {
		t.Fatalf("%s %+v", ev.Type, ev.Data.Error)
	}
	logs := ev.Data.Error.Logs
	if len(logs) == 0 || len(logs) > jobs.FailedLogLines || !slices.ContainsFunc(logs, func(s string) bool { return strings.Contains(s, "can't resolve 'left-pad'") }) {
		t.Errorf("failed event's logs %q", logs)
	}
	if n := h.Sim.Stats().Requests[vercel.EndpointDeploymentEvents]; n != 1 {
		t.Errorf("%d event reads for a build nobody followed, want 1 (its last lines)", n)
	}
}

// A follower that arrives while the build runs gets its whole log: the
// job stops polling and follows the build's stream, which starts from
// the first line.
func TestLateFollowerGetsTheWholeBuildLog(t *testing.T) {
	t.Parallel()
	// The build's length is known (ExpectedBuild), so nobody streams it
	// unless asked: the job sleeps until its expected end, then polls.
	reg := prometheus.NewPedanticRegistry()
	h := jobstest.Start(t, jobstest.Config{Sim: vercelsim.Config{BuildTime: 3 * time.Second},
		Pipeline: worker.PipelineConfig{Metrics: metrics.New(reg, metrics.BuildInfo{})}})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	req := jobstest.Request("acme", "late")
	req.ID = "late"
	h.Submit(t, req, h.Tarball(t, nil))
	jobstest.Eventually(t, waitLong, "the job never slept for its poll", func() bool {
		v, err := gaugeValue(reg, "deployq_build_waiting_jobs", metrics.BuildWaitPoll)
		return err == nil && v == 1
	})
	f, err := h.Client.FollowLogs(ctx, "acme", "late")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	var texts []string
	for l := range f.Lines() {
		texts = append(texts, l.Text)
		if strings.HasPrefix(l.Text, "Build Completed") {
			break
		}
	}
	if len(texts) < 4 || !strings.HasPrefix(texts[0], "Running build in") {
		t.Errorf("lines %q: want the build's log from its first line", texts)
	}
	if ev := h.WaitTerminal(t, "acme", waitLong, "late")["late"]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("deploy: %s", ev.Type)
	}
}
