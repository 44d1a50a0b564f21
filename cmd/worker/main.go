// Command worker runs deploy requests from NATS JetStream through the
// Vercel + Prisma Postgres pipeline. With no NATS_URL it starts an embedded
// nats-server; with --simulate it runs against the built-in Vercel
// simulator, so `worker --simulate` needs nothing else installed.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/deployq/deployq/internal/stack"
	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/console"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// run returns the process exit code: 0 after a clean shutdown, 2 for bad
// configuration, 1 for any other failure.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := loadConfig(args, getenv)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if err := serve(ctx, cfg, log); err != nil {
		var se *startError
		if errors.As(err, &se) {
			// Nothing ran yet: one line, as a bad setting gets.
			fmt.Fprintf(stderr, "worker: %v\n", se.err)
			return 1
		}
		log.Error("worker stopped", "err", err)
		return 1
	}
	return 0
}

// startError is a failure to start (NATS unreachable after the start-up
// retries, DATA_DIR held by another worker): said in one line on stderr.
type startError struct{ err error }

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by loadConfig
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	nc, closeNATS, err := connectNATS(ctx, cfg, log)
	if err != nil {
		return &startError{err}
	}
	defer closeNATS()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	var assets *jobs.Assets
	if err := retryStart(ctx, log, cfg.StartTimeout, "set up streams and buckets", func() (err error) {
		assets, err = jobs.Setup(ctx, js, jobs.SetupConfig{AckWait: cfg.AckWait, Replicas: cfg.StreamReplicas, MaxLanes: cfg.MaxTenantConsumers, LaneIdle: cfg.TenantConsumerIdle})
		return err
	}); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg, buildInfo())

	// One store, watched once, holds the fleet's API buckets and the
	// tenants' quota counts (the same bucket, different keys).
	var shared *budget.KVStore
	if cfg.Budget == "shared" || len(cfg.TenantQuotas) > 0 {
		if err := retryStart(ctx, log, cfg.StartTimeout, "set up the budget bucket", func() (err error) {
			shared, err = budget.NewKVStore(ctx, js, budget.KVStoreConfig{Replicas: cfg.StreamReplicas})
			return err
		}); err != nil {
			return err
		}
		defer shared.Close()
	}
	limiter, err := newBudget(cfg, shared, m, log)
	if err != nil {
		return err
	}
	api, integrationID, claimPage, stopSim, err := vercelClient(cfg, m, limiter, log)
	if err != nil {
		return err
	}
	defer stopSim()
	pipeline, err := worker.NewPipeline(api, assets.Sources, assets.Uploads, worker.PipelineConfig{
		IntegrationConfigID: integrationID,
		ProductID:           cfg.PrismaProductID,
		BillingPlan:         cfg.BillingPlan,
		Region:              cfg.Region,
		ExpectedBuild:       expectedBuild(cfg),
		KeepFailedResources: cfg.KeepFailedResources,
		BuildTimes:          assets.BuildTimes,
		Metrics:             m,
	})
	if err != nil {
		return err
	}
	quotas, err := newQuotas(cfg, shared, log)
	if err != nil {
		return err
	}
	worker, err := worker.New(js, assets, pipeline, worker.Config{
		Concurrency:      cfg.Concurrency,
		MaxAttempts:      cfg.MaxAttempts,
		ShutdownGrace:    cfg.ShutdownGrace,
		NoProgressEvents: !cfg.ProgressEvents,
		TenantWeights:    cfg.TenantWeights,
		TenantMaxRunning: cfg.TenantMaxRunning,
		Quotas:           quotas,
		ClaimPage:        claimPage,
		Apps: worker.AppsConfig{
			DomainSuffix: cfg.AppDomainSuffix, TTL: cfg.AppTTL, DryRun: cfg.AppExpiryDryRun,
			CallbackURL: cfg.ClaimCallbackURL, CallbackSecret: cfg.ClaimCallbackSecret,
			CheckEvery: cfg.ClaimCheckEvery, UpkeepEvery: cfg.AppUpkeepEvery, UpkeepPace: cfg.AppUpkeepPace, ProjectCap: cfg.ProjectCap, DatabaseCap: cfg.DatabaseCap,
		},
		Logger:  log,
		Metrics: m,
	})
	if err != nil {
		return err
	}

	// The console reads the queue as the admin does, through the worker's
	// connection.
	client, err := jobs.NewClient(ctx, js, jobs.ClientConfig{})
	if err != nil {
		return err
	}
	fleetBudget, _ := limiter.(*budget.Budget) // nil with BUDGET=off
	ui, err := console.Handler(console.Config{Client: client, Budget: fleetBudget, AppTTL: cfg.AppTTL, Token: cfg.ConsoleToken, Logger: log})
	if err != nil {
		return err
	}
	stopHTTP, err := serveHTTP(cfg.HTTPAddr, reg, nc, worker, ui, log)
	if err != nil {
		return err
	}
	defer stopHTTP()

	log.Info("worker started", "concurrency", cfg.Concurrency, "nats", natsLabel(cfg), "vercel", vercelLabel(cfg))
	err = worker.Run(ctx)
	log.Info("worker stopped taking work; shut down cleanly")
	return err
}

// retryStart retries a start-up step with backoff until it succeeds,
// timeout (START_TIMEOUT) passes or ctx ends: workers starting together
// on a fresh cluster, during a leader election, or before NATS is up, see
// their first attempts fail for a while.
func retryStart(ctx context.Context, log *slog.Logger, timeout time.Duration, what string, step func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 250 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = timeout
	return backoff.RetryNotify(step, backoff.WithContext(b, ctx), func(err error, wait time.Duration) {
		log.Warn("start-up step failed; retrying", "step", what, "err", err, "wait", wait)
	})
}

// expectedBuild seeds the poll schedule: the simulator's build time is
// known exactly. Otherwise it is left unset, so that a worker that knows
// nothing of the team's builds learns them (a few jobs follow their
// builds' event streams; the estimate is then shared through
// DEPLOY_BUILDTIMES) rather than polls on a guess.
func expectedBuild(cfg Config) time.Duration {
	switch {
	case cfg.ExpectedBuild > 0:
		return cfg.ExpectedBuild
	case cfg.Simulate:
		return cfg.SimBuildTime
	}
	return 0
}

func connectNATS(ctx context.Context, cfg Config, log *slog.Logger) (*nats.Conn, func(), error) {
	opts := []nats.Option{
		nats.Name("deployq-worker"),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted()) }),
	}
	if cfg.NATSURL != "" {
		if cfg.NATSCreds != "" {
			opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
		}
		if cfg.NATSTLSCA != "" {
			opts = append(opts, nats.RootCAs(cfg.NATSTLSCA))
		}
		if cfg.NATSTLSCert != "" {
			opts = append(opts, nats.ClientCert(cfg.NATSTLSCert, cfg.NATSTLSKey))
		}
		var nc *nats.Conn
		err := retryStart(ctx, log, cfg.StartTimeout, "connect to NATS", func() (err error) {
			nc, err = nats.Connect(cfg.NATSURL, opts...)
			return err
		})
		if err != nil {
			return nil, nil, fmt.Errorf("NATS_URL %s: %w (retried for %s: is the server up and reachable from here? START_TIMEOUT waits longer)",
				redactURLs(cfg.NATSURL), err, cfg.StartTimeout)
		}
		return nc, func() { _ = nc.Drain() }, nil
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	host, portStr, err := net.SplitHostPort(cfg.EmbeddedAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("EMBEDDED_NATS_ADDR: %w", err)
	}
	port, _ := strconv.Atoi(portStr)
	srv, err := natsembed.Start(natsembed.Options{Dir: filepath.Join(cfg.DataDir, "nats"), Host: host, Port: port})
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("embedded NATS on %s: %w (EMBEDDED_NATS_ADDR moves it)", cfg.EmbeddedAddr, err)
	}
	nc, err := srv.Connect(opts...)
	if err != nil {
		srv.Shutdown()
		unlock()
		return nil, nil, err
	}
	log.Info("embedded NATS server started", "url", srv.ClientURL(), "store", filepath.Join(cfg.DataDir, "nats"))
	return nc, func() { nc.Close(); srv.Shutdown(); unlock() }, nil
}

// newBudget returns the limiter every API call passes: buckets shared by
// the fleet through NATS (in shared), kept in this process, or none.
func newBudget(cfg Config, shared *budget.KVStore, m *metrics.Metrics, log *slog.Logger) (vercel.Limiter, error) {
	if cfg.Budget == "off" {
		return nil, nil
	}
	plan := cmp.Or(cfg.BudgetPlan, budget.PlanPro)
	base := budget.PlanLimits(plan)
	if cfg.Simulate && cfg.BudgetPlan == "" {
		// The simulator's limits are known exactly (none unless SIM_LIMITS
		// sets some); a plan's are the real API's.
		base, plan = cfg.SimLimits, "simulator"
	}
	limits := budget.MergeLimits(base, cfg.BudgetLimits)
	var store budget.Store = budget.NewMemoryStore()
	if cfg.Budget == "shared" {
		store = shared
	}
	b, err := budget.New(store, budget.Config{
		Team: cfg.TeamID, Limits: limits, Headroom: cfg.BudgetHeadroom, MaxPause: cfg.BudgetMaxPause,
		Logger: log, Metrics: m,
	})
	if err != nil {
		return nil, err
	}
	log.Info("API budget", "mode", cfg.Budget, "team", orPersonal(cfg.TeamID), "plan", plan,
		"deployments", limitOf(limits, vercel.EndpointCreateDeployment), "headroom", cfg.BudgetHeadroom)
	return b, nil
}

// newQuotas returns the counters of the tenants' quotas, kept for the
// fleet in the budget's bucket (shared) whatever BUDGET says (a quota is
// the operator's promise, not the API's, and holds for the fleet), or nil
// when no tenant has one.
func newQuotas(cfg Config, shared *budget.KVStore, log *slog.Logger) (*budget.Quotas, error) {
	if len(cfg.TenantQuotas) == 0 {
		return nil, nil
	}
	q, err := budget.NewQuotas(shared, cfg.TenantQuotas, nil)
	if err != nil {
		return nil, err
	}
	for _, t := range q.Tenants() {
		log.Info("tenant quota", "tenant", t, "quota", budget.FormatQuota(q.Quota(t)))
	}
	return q, nil
}

// limitOf writes ep's limit for a log line, or "none".
func limitOf(limits map[vercel.Endpoint]budget.Limit, ep vercel.Endpoint) string {
	if l, ok := limits[ep]; ok {
		return l.String()
	}
	return "none"
}

func orPersonal(team string) string {
	if team == "" {
		return "personal"
	}
	return team
}

// vercelClient returns the API client: the real API, or the simulator
// served in-process on a loopback port when --simulate is set.
func vercelClient(cfg Config, m *metrics.Metrics, limiter vercel.Limiter, log *slog.Logger) (api *vercel.Client, integrationID, claimPage string, stop func(), err error) {
	baseURL, token := cfg.VercelAPIURL, cfg.Token
	integrationID = cfg.IntegrationConfigID
	stop = func() {}
	if cfg.Simulate {
		sim := vercelsim.New(vercelsim.Config{BuildTime: cfg.SimBuildTime, BuildJitter: cfg.SimBuildTime / 5, RateLimits: stack.SimLimits(cfg.SimLimits)})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", "", nil, fmt.Errorf("simulator listener: %w", err)
		}
		hs := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		stop = func() { _ = hs.Close() }
		baseURL, token = "http://"+ln.Addr().String(), "simulated-token"
		if integrationID == "" {
			integrationID = "icfg_simulated"
		}
		// Simulated claim URLs open the simulator's page, which says so.
		claimPage = baseURL + vercelsim.ClaimPagePath
		log.Info("Vercel simulator started", "url", baseURL, "build_time", cfg.SimBuildTime, "claim_page", claimPage)
	}
	opts := []vercel.Option{
		vercel.WithBaseURL(baseURL),
		vercel.WithToken(token),
		vercel.WithRequestObserver(m),
		vercel.WithProjectsAPIVersion(cfg.ProjectsAPIVersion),
	}
	if cfg.TeamID != "" {
		opts = append(opts, vercel.WithTeamID(cfg.TeamID))
	}
	if limiter != nil {
		opts = append(opts, vercel.WithLimiter(limiter))
	}
	if api, err = vercel.New(opts...); err != nil {
		stop()
		return nil, "", "", nil, err
	}
	return api, integrationID, claimPage, stop, nil
}

func serveHTTP(addr string, reg *prometheus.Registry, nc *nats.Conn, w *worker.Worker, ui http.Handler, log *slog.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(rw, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		switch {
		case !nc.IsConnected():
			http.Error(rw, "not ready: NATS disconnected", http.StatusServiceUnavailable)
		case !w.CredentialsOK():
			http.Error(rw, "not ready: Vercel API refuses the credentials", http.StatusServiceUnavailable)
		case !w.Pulling():
			http.Error(rw, "not ready: cannot pull from the requests stream", http.StatusServiceUnavailable)
		case !w.Ready():
			http.Error(rw, "not ready: not taking work (starting or shutting down)", http.StatusServiceUnavailable)
		default:
			_, _ = io.WriteString(rw, "ready\n")
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// Vercel's calls when an app is claimed (CLAIM_CALLBACK_URL).
	mux.Handle("POST /claims/", w.ClaimHandler())
	// The operations console: the page at /, its API under /api/.
	mux.Handle("/", ui)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("HTTP_ADDR %s: %w", addr, err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	log.Info("serving health and metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}

func buildInfo() metrics.BuildInfo {
	bi := metrics.BuildInfo{Version: "devel"}
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" && info.Main.Version != "(devel)" {
			bi.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				bi.Revision = s.Value
			}
		}
	}
	return bi
}

func natsLabel(cfg Config) string {
	if cfg.NATSURL == "" {
		return "embedded " + cfg.EmbeddedAddr
	}
	return "external"
}

func vercelLabel(cfg Config) string {
	if cfg.Simulate {
		return "simulator"
	}
	return cfg.VercelAPIURL
}
