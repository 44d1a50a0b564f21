package budget

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// simToken is the bearer token the simulators accept and the workers send.
const simToken = "budgetbench-token"

// integrationConfigID is any id of the right shape: the simulator accepts
// every integration configuration.
const integrationConfigID = "icfg_budgetbench"

// childShutdownGrace lets in-flight jobs finish after SIGTERM. By then the
// parent has seen every terminal event, so nothing should be in flight.
const childShutdownGrace = 5 * time.Second

// readyLine is what a worker process prints on stdout once it takes work,
// so the parent submits only when every process is pulling.
const readyLine = "ready"

// runChild is one worker process: it connects to the strategy's NATS server
// over TCP, builds its own Vercel client, budget, pipeline and worker pool,
// and runs until SIGTERM. It returns the exit code.
func runChild(ctx context.Context, o childOptions, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).
		With("strategy", string(o.strategy), "process", o.index)
	if err := serveChild(ctx, o, stdout, log); err != nil {
		log.Error("worker process failed", "err", err)
		return 1
	}
	return 0
}

func serveChild(ctx context.Context, o childOptions, stdout io.Writer, log *slog.Logger) error {
	if !o.strategy.valid() {
		return fmt.Errorf("unknown strategy %q", o.strategy)
	}
	// A parent that dies without signalling closes our stdin: stop then
	// too, so no worker outlives the benchmark.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	nc, err := nats.Connect(o.natsURL, nats.Name(fmt.Sprintf("budgetbench-%s-%d", o.strategy, o.index)))
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	setupCtx, setupCancel := context.WithTimeout(ctx, 30*time.Second)
	defer setupCancel()
	assets, err := jobs.Setup(setupCtx, js, jobs.SetupConfig{})
	if err != nil {
		return err
	}
	limits, err := budget.ParseLimits(o.limitSpec)
	if err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	opts, release, err := clientOptions(setupCtx, o.strategy, js, limits, o.team, log)
	if err != nil {
		return err
	}
	defer release()
	api, err := vercel.New(append(opts,
		vercel.WithBaseURL(o.simURL), vercel.WithToken(simToken), vercel.WithTeamID(o.team))...)
	if err != nil {
		return err
	}
	pipeline, err := worker.NewPipeline(api, assets.Sources, assets.Uploads, worker.PipelineConfig{
		IntegrationConfigID: integrationConfigID,
		ExpectedBuild:       o.buildTime,
		BuildTimes:          assets.BuildTimes,
	})
	if err != nil {
		return err
	}
	worker, err := worker.New(js, assets, pipeline, worker.Config{
		Concurrency:   o.concurrency,
		Owner:         fmt.Sprintf("budgetbench-%s-%d-%d", o.strategy, o.index, os.Getpid()),
		ShutdownGrace: childShutdownGrace,
		Logger:        log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, readyLine)
	return worker.Run(ctx)
}
