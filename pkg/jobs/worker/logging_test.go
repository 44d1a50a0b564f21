package worker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
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
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// workerLines are the log messages that concern the worker rather than a
// job, and so carry no request id.
var workerLines = map[string]bool{
	"API refuses the worker's credentials: taking no work until it accepts them": true,
	"could not check the API credentials at start; the first job will":           true,
	"API accepts the worker's credentials again: resuming":                       true,
	"API still refuses the worker's credentials":                                 true,
	"fetch requests failed":                                   true,
	"shutdown grace period over: handing back in-flight jobs": true,
	"shared consumer was deleted; recreated it":               true,
	"source sweep incomplete":                                 true,
	"deleted unreferenced source tarballs":                    true,
	"delivered message without metadata":                      true,
	"request out of deliveries not moved to the DLQ":          true,
}

// One run through the paths a job can take (success, a shared upload,
// retried 5xx and 429 answers, a failed build, a rejected request, a
// cancel, a revoked and restored token), logged at debug level as JSON.
// Every job line names its request, tenant and step; the token appears
// nowhere: not in the logs, the events, the dead letters, the checkpoints,
// any other stream or bucket, or the metrics.
func TestLogsNameTheJobAndNeverTheToken(t *testing.T) {
	t.Parallel()
	token := "vcp_SeCrEt" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var logs syncbuf.Buffer
	reg := prometheus.NewRegistry()
	h := jobstest.Start(t, jobstest.Config{
		Sim: vercelsim.Config{
			Token: token,
			Seed:  7,
			Faults: map[vercel.Endpoint]vercelsim.Fault{
				vercel.EndpointCreateProject: {ErrorBefore: 0.3, ErrorAfter: 0.2},
			},
			RateLimits: map[vercel.Endpoint]vercelsim.Limit{
				vercel.EndpointCreateStore: {Requests: 2, Window: 500 * time.Millisecond},
			},
		},
		ClientOptions: []vercel.Option{vercel.WithToken(token)},
		Worker: worker.Config{
			Logger:                   slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Metrics:                  metrics.New(reg, metrics.BuildInfo{}),
			CredentialsProbeInterval: 50 * time.Millisecond,
			MaxAttempts:              50,
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	src := h.Tarball(t, nil)
	var ids []string
	for i := range 4 {
		ids = append(ids, h.Submit(t, jobstest.Request("acme", "ok-"+strconv.Itoa(i)), src).ID)
	}
	broken := h.Submit(t, jobstest.Request("acme", "broken"), jobstest.FailingTarball(t, "Module not found")).ID
	ids = append(ids, broken)
	if _, err := h.JS.Publish(ctx, jobs.RequestSubject("acme", "bad"), []byte(`{"version":1,"id":"bad","tenant":"acme"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Client.Cancel(ctx, "acme", "called-off"); err != nil {
		t.Fatal(err)
	}
	calledOff := jobstest.Request("acme", "called-off")
	calledOff.ID = "called-off"
	ids = append(ids, h.Submit(t, calledOff, src).ID)
	h.WaitTerminal(t, "acme", waitLong, ids...)

	w := h.Workers[0]
	h.Sim.SetToken("rotated")
	late := h.Submit(t, jobstest.Request("acme", "after-rotation"), src)
	jobstest.Eventually(t, waitLong, "the revoked token was not noticed", func() bool { return !w.CredentialsOK() })
	h.Sim.SetToken(token)
	ids = append(ids, late.ID)
	got := h.WaitTerminal(t, "acme", waitLong, ids...)
	types := map[jobs.EventType]int{}
	for _, ev := range got {
		types[ev.Type]++
	}
	if types[jobs.TypeSucceeded] != 5 || types[jobs.TypeFailed] != 1 || types[jobs.TypeCancelled] != 1 {
		for id, ev := range got {
			t.Logf("%s: %s", id, ev.Type)
		}
		t.Fatalf("outcomes %v", types)
	}
	jobstest.Eventually(t, waitLong, "no rejection for the malformed request", func() bool {
		return len(deadLetters(t, h, "acme")) == 2
	})
	stats := h.Sim.Stats()
	if stats.Responses[vercel.EndpointCreateStore][429] == 0 || stats.Faults[vercel.EndpointCreateProject] == (vercelsim.FaultCounts{}) {
		t.Fatalf("the run saw no 429 or no fault: %+v", stats.Responses)
	}
	h.Stop()

	// Every job line names its request, tenant and step.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	msgs := map[string]bool{}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		msg, _ := rec["msg"].(string)
		msgs[msg] = true
		if _, ok := rec["request_id"]; !ok {
			if !workerLines[msg] {
				t.Errorf("job line without request_id: %s", line)
			}
			continue
		}
		for _, k := range []string{"request_id", "tenant", "step"} {
			if v, _ := rec[k].(string); v == "" {
				t.Errorf("job line without %s: %s", k, line)
			}
		}
	}
	for _, want := range []string{"step completed", "step will be retried", "deploy succeeded", "deploy failed",
		"request rejected", "deploy cancelled", "API refused the worker's credentials: pausing all work"} {
		if !msgs[want] {
			t.Errorf("the run logged no %q line", want)
		}
	}

	// The token is nowhere.
	where := map[string]string{"logs": logs.String()}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	where["metrics"] = rec.Body.String()
	streams := h.JS.ListStreams(ctx)
	for info := range streams.Info() {
		where["stream "+info.Config.Name] = dumpStream(t, h.JS, info.Config.Name)
	}
	if err := streams.Err(); err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]string{
		jobs.StreamEvents:       late.ID,
		"KV_" + jobs.BucketJobs: late.ID,
		jobs.StreamDLQ:          broken,
	} {
		if !strings.Contains(where["stream "+s], want) {
			t.Fatalf("stream %s was not read: it lacks %s", s, want)
		}
	}
	if !strings.Contains(where["stream "+jobs.StreamDLQ], "Module not found") {
		t.Fatal("the DLQ dump lacks the build error")
	}
	for name, text := range where {
		if i := strings.Index(text, token); i >= 0 {
			t.Errorf("the token appears in the %s: …%s…", name, text[max(0, i-200):min(len(text), i+len(token)+50)])
		}
	}
}

// dumpStream returns every stored message of a stream, headers and data.
func dumpStream(t *testing.T, js jetstream.JetStream, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		b.WriteString(m.Subject + " " + strconv.FormatUint(seq, 10) + "\n")
		for k, vs := range m.Header {
			b.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		b.Write(m.Data)
		b.WriteString("\n")
	}
	return b.String()
}
