package jobstest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/internal/stack"
	"github.com/deployq/deployq/internal/streamget"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/deployq/deployq/pkg/tarball"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// VercelToken is the API token the harness's workers send the simulator:
// tests search what they can see for it.
const VercelToken = "vercel-token-of-the-harness"

// Config shapes a harness. The zero value runs one worker pool against a
// fault-free simulator whose builds take 50 ms.
type Config struct {
	// Sim configures the simulator. Its BuildTime defaults to 50 ms here.
	Sim vercelsim.Config
	// Setup configures streams and buckets.
	Setup jobs.SetupConfig
	// Pipeline configures the pipeline; IntegrationConfigID defaults to
	// icfg_test, ExpectedBuild to the simulator's build time, Limits to
	// Worker.Limits and BuildTimes to the harness's DEPLOY_BUILDTIMES
	// bucket.
	Pipeline worker.PipelineConfig
	// Worker configures each worker pool. Concurrency defaults to 8,
	// backoff to a fast schedule and ShutdownGrace to 5 s.
	Worker worker.Config
	// Workers is the number of worker pools. Defaults to 1; 0 with
	// NoWorkers set starts none (tests that start their own).
	Workers   int
	NoWorkers bool
	// ClientOptions are added to the Vercel client's options.
	ClientOptions []vercel.Option
	// NewLimiter, when set, gives each worker pool its own API budget (as
	// each worker process has), built on that pool's own NATS connection.
	NewLimiter func(tb testing.TB, js jetstream.JetStream) vercel.Limiter
}

// Harness is a running deployq.
type Harness struct {
	NATS    *natsembed.Server
	NC      *nats.Conn
	JS      jetstream.JetStream
	Assets  *jobs.Assets
	Sim     *vercelsim.Server
	SimURL  string
	API     *vercel.Client
	Client  *jobs.Client
	Workers []*worker.Worker

	cfg    Config
	runCtx context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // guards Workers while tests start more
}

// Start starts everything and stops it when the test ends.
func Start(tb testing.TB, cfg Config) *Harness {
	tb.Helper()
	if cfg.Sim.BuildTime == 0 {
		cfg.Sim.BuildTime = 50 * time.Millisecond
	}
	if cfg.Pipeline.IntegrationConfigID == "" {
		cfg.Pipeline.IntegrationConfigID = "icfg_test"
	}
	if cfg.Pipeline.ExpectedBuild == 0 {
		cfg.Pipeline.ExpectedBuild = max(cfg.Sim.BuildTime, time.Millisecond)
	}
	if cfg.Pipeline.Limits.MaxSourceBytes == 0 && cfg.Pipeline.Limits.MaxSourceFiles == 0 && cfg.Pipeline.Limits.MaxUnpackedBytes == 0 {
		cfg.Pipeline.Limits = cfg.Worker.Limits
	}
	if cfg.Pipeline.PollMin == 0 {
		cfg.Pipeline.PollMin = 10 * time.Millisecond
	}
	if cfg.Worker.Concurrency == 0 {
		cfg.Worker.Concurrency = 8
	}
	if cfg.Worker.ShutdownGrace == 0 {
		cfg.Worker.ShutdownGrace = 5 * time.Second
	}
	if cfg.Worker.PullWait == 0 {
		cfg.Worker.PullWait = 200 * time.Millisecond
	}
	if cfg.Worker.NewBackOff == nil {
		cfg.Worker.NewBackOff = FastBackOff
	}
	if cfg.Worker.Logger == nil {
		cfg.Worker.Logger = slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if cfg.Workers == 0 && !cfg.NoWorkers {
		cfg.Workers = 1
	}
	h := &Harness{cfg: cfg}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := stack.Start(ctx, stack.Config{Dir: tb.TempDir(), Setup: cfg.Setup, Sim: &cfg.Sim})
	if err != nil {
		tb.Fatalf("start: %v", err)
	}
	tb.Cleanup(st.Close)
	h.NATS, h.NC, h.JS, h.Assets, h.Sim, h.SimURL = st.NATS, st.NC, st.JS, st.Assets, st.Sim, st.SimURL
	if h.cfg.Pipeline.BuildTimes == nil {
		// Shared by the harness's pipelines, as by a fleet's workers.
		h.cfg.Pipeline.BuildTimes = h.Assets.BuildTimes
	}
	h.API = NewAPI(tb, h.SimURL, cfg.ClientOptions...)

	if h.Client, err = jobs.NewClient(ctx, h.JS, jobs.ClientConfig{Limits: cfg.Worker.Limits}); err != nil {
		tb.Fatalf("client: %v", err)
	}

	h.runCtx, h.cancel = context.WithCancel(context.Background())
	tb.Cleanup(h.Stop)
	for range cfg.Workers {
		h.StartWorker(tb, h.runCtx)
	}
	return h
}

// NewAPI returns a real Vercel client for the simulator at url.
func NewAPI(tb testing.TB, url string, opts ...vercel.Option) *vercel.Client {
	tb.Helper()
	api, err := vercel.New(append([]vercel.Option{
		vercel.WithBaseURL(url), vercel.WithToken(VercelToken), vercel.WithRequestTimeout(10 * time.Second),
	}, opts...)...)
	if err != nil {
		tb.Fatalf("vercel client: %v", err)
	}
	return api
}

// NewPipeline returns a pipeline over the harness's client and assets.
func (h *Harness) NewPipeline(tb testing.TB) *worker.Pipeline {
	tb.Helper()
	p, err := worker.NewPipeline(h.API, h.Assets.Sources, h.Assets.Uploads, h.cfg.Pipeline)
	if err != nil {
		tb.Fatalf("pipeline: %v", err)
	}
	return p
}

// StartWorker starts one more worker pool that runs until ctx ends or the
// harness stops; it returns the worker and a channel closed when Run
// returns.
func (h *Harness) StartWorker(tb testing.TB, ctx context.Context) (*worker.Worker, <-chan struct{}) {
	tb.Helper()
	p := h.NewPipeline(tb)
	if h.cfg.NewLimiter != nil {
		// Its own connection and budget, as a separate process would have.
		nc, err := h.NATS.Connect()
		if err != nil {
			tb.Fatalf("connect NATS: %v", err)
		}
		tb.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		api := NewAPI(tb, h.SimURL, append(h.cfg.ClientOptions, vercel.WithLimiter(h.cfg.NewLimiter(tb, js)))...)
		if p, err = worker.NewPipeline(api, h.Assets.Sources, h.Assets.Uploads, h.cfg.Pipeline); err != nil {
			tb.Fatalf("pipeline: %v", err)
		}
	}
	return h.RunWorker(tb, ctx, p, h.cfg.Worker)
}

// RunWorker starts a worker pool over p with cfg (defaults as the
// harness's workers have them, the concurrency excepted) that runs until
// ctx ends or the harness stops; it returns the worker and a channel
// closed when Run returns.
func (h *Harness) RunWorker(tb testing.TB, ctx context.Context, p *worker.Pipeline, cfg worker.Config) (*worker.Worker, <-chan struct{}) {
	tb.Helper()
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(h.runCtx, cancel)
	if cfg.NewBackOff == nil {
		cfg.NewBackOff = h.cfg.Worker.NewBackOff
	}
	if cfg.Logger == nil {
		cfg.Logger = h.cfg.Worker.Logger
	}
	if cfg.PullWait == 0 {
		cfg.PullWait = h.cfg.Worker.PullWait
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = h.cfg.Worker.ShutdownGrace
	}
	w, err := worker.New(h.JS, h.Assets, p, cfg)
	if err != nil {
		tb.Fatalf("worker: %v", err)
	}
	h.mu.Lock()
	h.Workers = append(h.Workers, w)
	h.mu.Unlock()
	done := make(chan struct{})
	h.wg.Go(func() {
		defer close(done)
		defer cancel()
		if err := w.Run(ctx); err != nil {
			tb.Errorf("worker run: %v", err)
		}
	})
	return w, done
}

// Stop stops the worker pools and waits for them.
func (h *Harness) Stop() {
	if h.cancel != nil {
		h.cancel()
	}
	h.wg.Wait()
}

// Tarball packs files (path → content) into a source tarball; nil gives a
// small default app.
func (h *Harness) Tarball(tb testing.TB, files map[string]string) []byte {
	return Tarball(tb, files)
}

// Tarball packs files (path → content) into a deterministic tarball.
func Tarball(tb testing.TB, files map[string]string) []byte {
	tb.Helper()
	if files == nil {
		files = map[string]string{
			"package.json":   `{"name":"app","scripts":{"build":"next build"}}`,
			"app/page.tsx":   `export default function Page() { return <h1>hello</h1> }`,
			"next.config.js": `module.exports = {}`,
		}
	}
	dir := tb.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	a, err := tarball.Pack(dir)
	if err != nil {
		tb.Fatalf("pack: %v", err)
	}
	return a.Data
}

// FailingTarball is a tarball whose build the simulator fails with msg.
func FailingTarball(tb testing.TB, msg string) []byte {
	return Tarball(tb, map[string]string{
		"package.json":          `{"name":"broken"}`,
		".vercelsim/fail-build": msg,
	})
}

// Submit submits a request and fails the test on error.
func (h *Harness) Submit(tb testing.TB, req jobs.Request, tgz []byte) *jobs.Submitted {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := h.Client.Submit(ctx, req, tgz)
	if err != nil {
		tb.Fatalf("submit: %v", err)
	}
	return sub
}

// WaitTerminal waits for the terminal events of ids (all of one tenant)
// and returns them by id. It fails the test after timeout.
func (h *Harness) WaitTerminal(tb testing.TB, tenant string, timeout time.Duration, ids ...string) map[string]jobs.Event {
	tb.Helper()
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	got := make(map[string]jobs.Event, len(ids))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w, err := h.Client.Watch(ctx, jobs.WatchFilter{Tenant: tenant, FromStart: true})
	if err != nil {
		tb.Fatalf("watch: %v", err)
	}
	defer w.Stop()
	for ev, err := range w.Events() {
		if err != nil {
			tb.Fatalf("watch: %v", err)
		}
		if ev.Terminal() && want[ev.Data.RequestID] {
			got[ev.Data.RequestID] = ev
			if len(got) == len(want) {
				return got
			}
		}
	}
	tb.Fatalf("after %s: %d of %d requests ended", timeout, len(got), len(want))
	return nil
}

// Events returns every stored event of one request, in order.
func (h *Harness) Events(tb testing.TB, tenant, id string) []jobs.Event {
	tb.Helper()
	return StoredEvents(tb, h.JS, jobs.EventSubject(tenant, id))
}

// StoredEvents reads every stored event on subject (wildcards allowed).
func StoredEvents(tb testing.TB, js jetstream.JetStream, subject string) []jobs.Event {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, jobs.StreamEvents)
	if err != nil {
		tb.Fatalf("stored events: %v", err)
	}
	msgs, err := streamget.All(ctx, s, subject)
	if err != nil {
		tb.Fatalf("stored events: %v", err)
	}
	evs := make([]jobs.Event, 0, len(msgs))
	for _, m := range msgs {
		ev, err := jobs.DecodeEvent(m.Data)
		if err != nil {
			tb.Fatalf("stored events: %v", err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// tbWriter sends worker logs to the test's log, so they show with the
// failing test and stay quiet otherwise.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Request is a valid request of tenant for an app called name (a Next.js
// app, with a return URL), ready to submit.
func Request(tenant, name string) jobs.Request {
	return jobs.Request{Tenant: tenant, Name: name, Framework: "nextjs", ReturnURL: "https://platform.example/back"}
}

// Eventually waits until cond holds, asking every 10 ms, and fails the
// test after timeout, saying what did not happen.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			tb.Fatalf("after %s: %s", timeout, what)
		}
	}
}

// Lane returns the consumer of tenant's requests (jobs.TenantConsumer)
// as the workers made it, or makes it if no worker has yet.
func (h *Harness) Lane(t testing.TB, tenant string) jetstream.Consumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := h.JS.Consumer(ctx, jobs.StreamRequests, jobs.TenantConsumer(tenant)); err == nil {
		return c
	}
	c, err := h.Assets.TenantConsumer(ctx, h.JS, tenant, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// LaneInfo returns the current state of tenant's consumer.
func (h *Harness) LaneInfo(t testing.TB, tenant string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ci, err := h.Lane(t, tenant).Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

// Deliveries sums, over every consumer of the requests stream (each
// tenant's and the shared one), the requests redelivered and those
// delivered and not yet settled.
func (h *Harness) Deliveries(t testing.TB) (redelivered, unsettled int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	infos := h.Assets.Requests.ListConsumers(ctx)
	for ci := range infos.Info() {
		redelivered += ci.NumRedelivered
		unsettled += ci.NumAckPending
	}
	if err := infos.Err(); err != nil {
		t.Fatal(err)
	}
	return redelivered, unsettled
}
