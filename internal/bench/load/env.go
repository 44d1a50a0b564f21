package load

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/deployq/deployq/internal/stack"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names every measurement uses: one tenant, one Vercel team, so every job
// shares one tarball upload and one set of (unlimited) API limits.
const (
	benchTenant         = "bench"
	benchTeam           = "team_loadbench"
	benchToken          = "loadbench-token"
	integrationConfigID = "icfg_loadbench"
	// productID is the Prisma Postgres product, the pipeline's default.
	productID = "iap_yVdbiKqs5fLkYDAB"
)

// setupTimeout bounds starting a server, creating the assets and closing
// down, so a stuck piece fails the run instead of hanging it.
const setupTimeout = 30 * time.Second

// envConfig says what one measurement needs besides a NATS server.
type envConfig struct {
	// name labels the temporary directory and the NATS connections.
	name string
	// assets creates deployq's streams and buckets (jobs.Setup) and the
	// clients over them; the raw broker baseline does without.
	assets bool
	// sim starts a Vercel simulator on loopback with this config and
	// builds a pipeline against it; nil starts none.
	sim *vercelsim.Config
	// wrap, when set, is put in front of the simulator's handler.
	wrap func(http.Handler) http.Handler
	// pipeline configures the pipeline; IntegrationConfigID is filled in.
	pipeline worker.PipelineConfig
	// httpConns is the idle connections the Vercel client keeps per host:
	// at least the jobs in flight, so no call opens a connection.
	httpConns int
}

// env is one measurement's world: a fresh embedded nats-server on
// loopback TCP with its own store directory, and optionally deployq's
// assets, a simulator and a pipeline. Each role has its own connection,
// as producer, watcher and worker would in separate processes: one
// connection's single reader would otherwise serialize them all.
type env struct {
	dir string
	st  *stack.Stack
	srv *natsembed.Server

	producer, watcher, worker *nats.Conn
	producerJS, watcherJS     jetstream.JetStream
	workerJS                  jetstream.JetStream

	assets   *jobs.Assets // over the worker's connection
	client   *jobs.Client // the producer's
	watch    *jobs.Client // the watcher's
	sim      *vercelsim.Server
	api      *vercel.Client
	pipeline *worker.Pipeline

	closers []func()
	keep    bool
}

// newEnv starts what cfg asks for under parent (a directory kept or
// removed by close, as keep says).
func newEnv(ctx context.Context, parent string, keep bool, cfg envConfig) (e *env, err error) {
	dir, err := os.MkdirTemp(parent, cfg.name+"-")
	if err != nil {
		return nil, err
	}
	e = &env{dir: dir, keep: keep}
	defer func() {
		if err != nil {
			e.close()
			e = nil
		}
	}()
	st, err := stack.Start(ctx, stack.Config{Dir: dir, Name: "loadbench-" + cfg.name, Role: "worker", Bare: !cfg.assets,
		Sim: cfg.sim, WrapSim: cfg.wrap})
	if err != nil {
		return e, err
	}
	e.st = st
	e.closers = append(e.closers, st.Close)
	e.srv, e.worker, e.workerJS, e.assets, e.sim = st.NATS, st.NC, st.JS, st.Assets, st.Sim
	if e.producer, e.producerJS, err = st.Connect("producer"); err != nil {
		return e, err
	}
	if e.watcher, e.watcherJS, err = st.Connect("watcher"); err != nil {
		return e, err
	}
	if !cfg.assets {
		return e, nil
	}
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if e.client, err = jobs.NewClient(sctx, e.producerJS, jobs.ClientConfig{}); err != nil {
		return e, err
	}
	if e.watch, err = jobs.NewClient(sctx, e.watcherJS, jobs.ClientConfig{}); err != nil {
		return e, err
	}
	if cfg.sim == nil {
		return e, nil
	}
	simURL := st.SimURL
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = max(cfg.httpConns, 32)
	transport.MaxIdleConns = max(cfg.httpConns, 32) + 16
	if e.api, err = vercel.New(vercel.WithBaseURL(simURL), vercel.WithToken(benchToken), vercel.WithTeamID(benchTeam),
		vercel.WithHTTPClient(&http.Client{Transport: transport})); err != nil {
		return e, err
	}
	pcfg := cfg.pipeline
	pcfg.IntegrationConfigID = integrationConfigID
	if e.pipeline, err = st.Pipeline(e.api, pcfg); err != nil {
		return e, err
	}
	return e, nil
}

// close stops everything in reverse order of starting and removes the
// directory unless asked to keep it.
func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
	if !e.keep {
		_ = os.RemoveAll(e.dir)
	}
}

// natsMsgs is what the server has received from and sent to clients so
// far: differences over a timed part tell how many broker messages a job
// costs.
func (e *env) natsMsgs() (in, out int64) {
	v, err := e.srv.NATS().Varz(nil)
	if err != nil {
		return 0, 0
	}
	return v.InMsgs, v.OutMsgs
}

// runWorker runs a worker pool of c slots over the env's pipeline, on the
// worker's connection, until the returned stop is called; stop waits for
// Run to return and reports its error. Its logs go to log at Warn and
// above: a healthy run logs nothing.
func (e *env) runWorker(ctx context.Context, c int, log *slog.Logger, noProgress bool) (stop func() error, err error) {
	_, stop, err = e.st.RunWorker(ctx, e.workerJS, e.pipeline, worker.Config{
		Concurrency: c, Owner: "loadbench", Logger: log, NoProgressEvents: noProgress,
	})
	return stop, err
}

// request is a deploy request of the benchmark's one app; Submit fills in
// Version and Source, and direct runs get them from withSource.
func request(id string) jobs.Request {
	return jobs.Request{ID: id, Tenant: benchTenant, Name: "loadbench", Framework: "nextjs"}
}

// withSource fills in what Submit would: the version and the tarball's
// reference.
func withSource(r jobs.Request, tgz []byte) jobs.Request {
	r.Version = jobs.RequestVersion
	r.Source = jobs.SourceRef{Bucket: jobs.BucketSources, SHA1: vercel.SHA1Hex(tgz), Size: int64(len(tgz))}
	return r
}
