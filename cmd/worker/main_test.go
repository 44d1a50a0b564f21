package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/internal/syncbuf"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// awaitReady waits until the worker run answers /readyz with 200, and
// fails the test if it exits or ctx ends first.
func awaitReady(ctx context.Context, t *testing.T, httpAddr string, exit <-chan int, logs *syncbuf.Buffer) {
	t.Helper()
	for {
		if code, _ := get(ctx, "http://"+httpAddr+"/readyz"); code == http.StatusOK {
			return
		}
		select {
		case code := <-exit:
			t.Fatalf("worker exited %d before ready:\n%s", code, logs.String())
		case <-ctx.Done():
			t.Fatalf("worker never ready:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond): // polling /readyz
		}
	}
}

func get(ctx context.Context, url string) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The binary's default mode end to end: embedded NATS, the simulator, a
// deploy submitted over TCP by another connection, health endpoints, the
// metrics it produced, and a clean exit on shutdown.
func TestRunSimulatedEndToEnd(t *testing.T) {
	t.Parallel()
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var logs syncbuf.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(runCtx, []string{
			"--simulate", "--sim-build-time", "100ms", "--data-dir", t.TempDir(),
			"--embedded-nats-addr", natsAddr, "--http-addr", httpAddr, "--concurrency", "4",
			"--token", "must-not-appear-anywhere",
		}, func(string) string { return "" }, &logs)
	}()

	awaitReady(ctx, t, httpAddr, exit, &logs)
	// The console, at / on the same address.
	if code, body := get(ctx, "http://"+httpAddr+"/"); code != http.StatusOK || !strings.Contains(body, "<title>deployq console</title>") {
		t.Fatalf("console page: %d %.200s", code, body)
	}
	if code, body := get(ctx, "http://"+httpAddr+"/api/overview"); code != http.StatusOK || !strings.Contains(body, `"queued":`) {
		t.Fatalf("console overview: %d %.200s", code, body)
	}
	if code, body := get(ctx, "http://"+httpAddr+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d %s", code, body)
	}

	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	client, err := jobs.NewClient(ctx, js, jobs.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := client.Submit(ctx, jobs.Request{Tenant: "acme", Name: "e2e"}, jobstest.Tarball(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	w, err := client.Watch(ctx, jobs.WatchFilter{Tenant: "acme", ID: sub.ID, FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	for ev, err := range w.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Terminal() {
			if ev.Type != jobs.TypeSucceeded || ev.Data.ClaimURL == "" {
				t.Fatalf("terminal event %s %+v", ev.Type, ev.Data)
			}
			// A simulated claim URL opens the simulator's page, which says
			// it is simulated.
			if !strings.HasPrefix(ev.Data.ClaimURL, "http://127.0.0.1:") || !strings.Contains(ev.Data.ClaimURL, vercelsim.ClaimPagePath+"?code=") {
				t.Fatalf("simulated claim URL %s passes for a real one", ev.Data.ClaimURL)
			}
			if code, body := get(ctx, ev.Data.ClaimURL); code != http.StatusOK || !strings.Contains(body, "Simulated.") {
				t.Fatalf("the simulated claim page: %d %.200s", code, body)
			}
			break
		}
	}
	w.Stop()

	// The job's metrics are recorded after its terminal event is out.
	var metrics string
	for !strings.Contains(metrics, `deployq_jobs_processed_total{outcome="success"} 1`) {
		select {
		case <-ctx.Done():
			t.Fatalf("job never counted in /metrics:\n%s", metrics)
		case <-time.After(20 * time.Millisecond):
		}
		_, metrics = get(ctx, "http://"+httpAddr+"/metrics")
	}
	for _, want := range []string{
		`deployq_jobs_processed_total{outcome="success"} 1`,
		`deployq_vercel_requests_total{code="200",endpoint="projects.create"} 1`,
		`deployq_worker_ready 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	stop()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d after shutdown:\n%s", code, logs.String())
		}
	case <-ctx.Done():
		t.Fatal("worker did not exit after shutdown")
	}
	out := logs.String() + metrics
	if strings.Contains(out, "must-not-appear-anywhere") {
		t.Fatal("the token appeared in the logs or metrics")
	}
	if !strings.Contains(logs.String(), "shut down cleanly") {
		t.Fatalf("no clean shutdown line in:\n%s", logs.String())
	}
}

func TestRunBadConfigExits2(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--concurrency", "zero"}, func(string) string { return "" }, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "CONCURRENCY") || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

// Two workers on one DATA_DIR would run two servers on one store: the
// second is refused at start, in one line, and exits 1.
func TestTwoWorkersCannotShareADataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var logs syncbuf.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(runCtx, []string{"--simulate", "--data-dir", dir, "--embedded-nats-addr", freeAddr(t), "--http-addr", httpAddr},
			func(string) string { return "" }, &logs)
	}()
	awaitReady(ctx, t, httpAddr, exit, &logs)
	var stderr bytes.Buffer
	code := run(ctx, []string{"--simulate", "--data-dir", dir, "--embedded-nats-addr", freeAddr(t), "--http-addr", "off"},
		func(string) string { return "" }, &stderr)
	got := stderr.String()
	if code != 1 || strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "worker: DATA_DIR "+dir+" is in use by another worker (pid ") {
		t.Fatalf("second worker on one DATA_DIR: exit %d, stderr %q", code, got)
	}
	stop()
	if code := <-exit; code != 0 {
		t.Fatalf("first worker exit %d:\n%s", code, logs.String())
	}
}

// An unreachable NATS_URL is retried for START_TIMEOUT, then said in one
// line.
func TestUnreachableNATSIsOneLine(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--simulate", "--nats-url", "nats://" + freeAddr(t), "--start-timeout", "500ms", "--http-addr", "off"},
		func(string) string { return "" }, &stderr)
	got := stderr.String()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	last := lines[len(lines)-1]
	if code != 1 || !strings.HasPrefix(last, "worker: NATS_URL nats://127.0.0.1:") || !strings.Contains(last, "retried for 500ms") {
		t.Fatalf("exit %d, stderr:\n%s", code, got)
	}
	if !strings.Contains(got, "start-up step failed; retrying") {
		t.Errorf("the retries were not logged:\n%s", got)
	}
}
