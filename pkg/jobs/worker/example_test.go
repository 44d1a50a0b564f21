package worker_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/deployq/deployq/internal/stack"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// A worker over the assets jobs.Setup created, calling the Vercel API
// (here the simulator, served in this process) through a pipeline.
func ExampleWorker_Run() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, _ := os.MkdirTemp("", "deployq-example")
	defer os.RemoveAll(dir)
	// An embedded NATS with the assets, and the simulator.
	s, err := stack.Start(ctx, stack.Config{Dir: dir, Sim: &vercelsim.Config{}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	api, err := vercel.New(vercel.WithBaseURL(s.SimURL), vercel.WithToken("a-token"))
	if err != nil {
		log.Fatal(err)
	}
	p, err := worker.NewPipeline(api, s.Assets.Sources, s.Assets.Uploads, worker.PipelineConfig{
		IntegrationConfigID: "icfg_example",
		BuildTimes:          s.Assets.BuildTimes, // learn build times with the rest of the fleet
	})
	if err != nil {
		log.Fatal(err)
	}
	w, err := worker.New(s.JS, s.Assets, p, worker.Config{Concurrency: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- w.Run(runCtx) }()
	// Ready once the API accepted the token and the consumer answers:
	// what cmd/worker's /readyz reports.
	for !w.Ready() {
		select {
		case <-ctx.Done():
			log.Fatal("never ready")
		case <-time.After(10 * time.Millisecond):
		}
	}
	fmt.Println("ready:", w.Ready(), "consumer:", jobs.ConsumerWorkers)
	stop()
	fmt.Println("stopped:", <-done)
	// Output:
	// ready: true consumer: deploy-workers
	// stopped: <nil>
}
