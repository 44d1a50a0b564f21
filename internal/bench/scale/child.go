package scale

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// childConnName names the worker process's NATS connection, so the parent
// can find it among the server's connections and read its traffic.
const childConnName = "scalebench-worker"

// readyWord starts the line the worker process prints on stdout once it
// serves its metrics and is about to take work; the address follows.
const readyWord = "ready"

// heapPath is where the worker process serves a heap profile taken right
// after garbage collections, so its in-use figures are current.
const heapPath = "/debug/heap"

// freePath makes the worker process collect garbage and return every free
// page to the OS (debug.FreeOSMemory). It is for the diagnostic after the
// window only: what the jobs in flight need, without the garbage and the
// grown stacks the ramp left behind.
const freePath = "/debug/free"

// childOptions is the worker process's command line, passed by the parent.
type childOptions struct {
	natsURL       string
	simURL        string
	concurrency   int
	expectedBuild time.Duration
	maxAckPending int
	grace         time.Duration
}

// childArgs is the command line that starts a worker process with o.
func childArgs(o childOptions) []string {
	return []string{modeChild,
		"-nats-url", o.natsURL,
		"-sim-url", o.simURL,
		"-concurrency", fmt.Sprint(o.concurrency),
		"-expected-build", o.expectedBuild.String(),
		"-max-ack-pending", fmt.Sprint(o.maxAckPending),
		"-grace", o.grace.String(),
	}
}

// runChild is the worker process of the scale part: one worker pool, as
// cmd/worker builds it, with its metrics (the Go runtime's included) and
// a heap profile served on a loopback port. It runs until SIGTERM or
// until its stdin closes, which happens when the parent dies.
func runChild(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o childOptions
	fs := flag.NewFlagSet("bench scale child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.natsURL, "nats-url", "", "NATS server URL")
	fs.StringVar(&o.simURL, "sim-url", "", "simulator base URL")
	fs.IntVar(&o.concurrency, "concurrency", 0, "jobs at once")
	fs.DurationVar(&o.expectedBuild, "expected-build", 0, "PipelineConfig.ExpectedBuild")
	fs.IntVar(&o.maxAckPending, "max-ack-pending", 0, "each tenant's consumer's MaxAckPending")
	fs.DurationVar(&o.grace, "grace", 5*time.Second, "shutdown grace")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := serveChild(ctx, o, stdout, log); err != nil {
		log.Error("worker process failed", "err", err)
		return 1
	}
	return 0
}

func serveChild(ctx context.Context, o childOptions, stdout io.Writer, log *slog.Logger) error {
	if o.natsURL == "" || o.simURL == "" || o.concurrency < 1 {
		return errors.New("-nats-url, -sim-url and -concurrency are required")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	nc, err := nats.Connect(o.natsURL, nats.Name(childConnName))
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	setupCtx, setupCancel := context.WithTimeout(ctx, setupTimeout)
	defer setupCancel()
	// Every process of a fleet must pass the same SetupConfig; the parent
	// set the consumer up with this MaxAckPending too.
	assets, err := jobs.Setup(setupCtx, js, jobs.SetupConfig{MaxAckPending: o.maxAckPending})
	if err != nil {
		return err
	}

	// The registry cmd/worker serves: the Go runtime's collector gives
	// go_goroutines and go_memstats_*, pkg/metrics deployq_jobs_in_flight.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg, metrics.BuildInfo{Version: "scalebench"})
	w, err := newWorker(js, assets, workerParts{
		simURL:        o.simURL,
		expectedBuild: o.expectedBuild,
		concurrency:   o.concurrency,
		owner:         fmt.Sprintf("scalebench-worker-%d", os.Getpid()),
		grace:         o.grace,
		log:           log,
	}, worker.Config{Metrics: m})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET "+heapPath, func(rw http.ResponseWriter, _ *http.Request) {
		// A heap profile counts frees only once a collection has swept
		// them, so it lags a cycle behind the last one: two collections
		// make it describe the heap of now, not of the ramp-up.
		runtime.GC()
		runtime.GC()
		rw.Header().Set("Content-Type", "application/octet-stream")
		_ = pprof.Lookup("heap").WriteTo(rw, 0)
	})
	mux.HandleFunc("POST "+freePath, func(rw http.ResponseWriter, _ *http.Request) {
		debug.FreeOSMemory()
		rw.WriteHeader(http.StatusNoContent)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = hs.Shutdown(sctx)
	}()

	fmt.Fprintln(stdout, readyWord, ln.Addr().String())
	return w.Run(ctx)
}
