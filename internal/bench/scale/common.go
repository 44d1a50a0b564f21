package scale

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/deployq/deployq/internal/stack"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names every run uses. One tenant and one Vercel team: uploads are
// deduplicated per team, so "one upload per source" means one per team.
const (
	benchTenant         = "scalebench"
	benchTeam           = "team_scalebench"
	simToken            = "scalebench-token"
	integrationConfigID = "icfg_scalebench" // the simulator accepts any
)

// noExpectation labels a worker whose PipelineConfig.ExpectedBuild is left
// unset, as a freshly started worker's is: its estimate is cold until a
// build was seen.
const noExpectation = "none"

// Timeouts around the measurements, so a stuck piece fails the run
// instead of hanging it.
const (
	setupTimeout   = 30 * time.Second
	submitTimeout  = 30 * time.Second
	progressPeriod = 30 * time.Second
)

// jitterOf is the jitter added to builds of time d.
func jitterOf(d time.Duration, ratio float64) time.Duration {
	return time.Duration(float64(d) * ratio)
}

// tarballs returns n small Next.js apps that differ in content, so each
// has its own SHA-1 and is uploaded on its own.
func tarballs(n int) [][]byte {
	out := make([][]byte, n)
	for i := range n {
		out[i] = vercelsim.Tarball(map[string]string{
			"package.json":   fmt.Sprintf(`{"name":"scalebench-%d","scripts":{"build":"next build"}}`, i),
			"app/page.tsx":   fmt.Sprintf(`export default function Page() { return <h1>source %d</h1> }`, i),
			"next.config.js": `module.exports = {}`,
		})
	}
	return out
}

// workerParts are the settings of one worker that differ between the runs.
type workerParts struct {
	simURL        string
	expectedBuild time.Duration // 0: the pipeline's default
	concurrency   int
	owner         string
	grace         time.Duration
	log           *slog.Logger
	metrics       *metrics.Metrics // nil: none
}

// newWorker builds a worker the way cmd/worker does, minus the budget
// (see the package comment): a Vercel client for the simulator, the
// pipeline and the pool, over assets that Setup returned.
func newWorker(js jetstream.JetStream, assets *jobs.Assets, wp workerParts, wc worker.Config) (*worker.Worker, error) {
	api, err := vercel.New(vercel.WithBaseURL(wp.simURL), vercel.WithToken(simToken), vercel.WithTeamID(benchTeam))
	if err != nil {
		return nil, err
	}
	pipeline, err := worker.NewPipeline(api, assets.Sources, assets.Uploads, worker.PipelineConfig{
		IntegrationConfigID: integrationConfigID,
		ExpectedBuild:       wp.expectedBuild,
		BuildTimes:          assets.BuildTimes,
		Metrics:             wp.metrics,
	})
	if err != nil {
		return nil, err
	}
	wc.Concurrency = wp.concurrency
	wc.Owner = wp.owner
	wc.ShutdownGrace = wp.grace
	wc.Logger = wp.log
	if wc.Metrics == nil {
		wc.Metrics = wp.metrics
	}
	return worker.New(js, assets, pipeline, wc)
}

// broker is an embedded nats-server with deployq's streams and buckets
// set up, and the producer's connection to it.
type broker struct {
	*stack.Stack
	srv    *natsembed.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	assets *jobs.Assets
}

// startBroker starts a nats-server on 127.0.0.1 with its store under dir
// and runs jobs.Setup with cfg.
func startBroker(ctx context.Context, dir string, cfg jobs.SetupConfig) (*broker, error) {
	st, err := stack.Start(ctx, stack.Config{Dir: dir, Name: "scalebench", Role: "producer", Setup: cfg})
	if err != nil {
		return nil, err
	}
	return &broker{Stack: st, srv: st.NATS, nc: st.NC, js: st.JS, assets: st.Assets}, nil
}

func (b *broker) close() { b.Close() }
