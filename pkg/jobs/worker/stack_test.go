package worker_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/prometheus/client_golang/prometheus"
)

// A job waiting for its build holds a goroutine whose stack the runtime
// halves at each GC while a quarter of it holds the frames. The worker
// keeps the frames on that stack small (start, begin, beforeStep,
// stepDone, stepFailed and vetSource run in frames of their own, off the
// stack during the wait) so that a waiting job's stack shrinks to the
// runtime's smallest, 8 KiB: ten thousand waiting jobs are then about 80
// MB of stacks (docs/BENCHMARKS.md, scalebench). A frame on the waiting
// path grown by a few kilobytes shows here as stacks of a doubled class
// (3 KB more in runSteps: 18–20 KiB a job). Stack sizes are powers of
// two, so the measure is not a timing and does not drift with a loaded
// machine.
func TestWaitingJobStackStaysSmall(t *testing.T) {
	const n = 256
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true, Sim: vercelsim.Config{BuildTime: 5 * time.Minute}})
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{})
	// Told the build time, every job sleeps until its one status poll:
	// the wait of nearly every job of a warm worker.
	// Its own transport, so that the connections the steps opened (two
	// goroutines each, and the simulator's one) can be closed before the
	// stacks are counted: only the jobs' own goroutines then remain.
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	api := jobstest.NewAPI(t, h.SimURL, vercel.WithHTTPClient(&http.Client{Transport: tr}))
	p := waitPipeline(t, h, api, worker.PipelineConfig{ExpectedBuild: 5 * time.Minute, Metrics: m})
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	h.RunWorker(t, ctx, p, worker.Config{Concurrency: n})

	base, goroutines := stacksAfterGC(), runtime.NumGoroutine()
	tgz := h.Tarball(t, nil)
	for i := range n {
		h.Submit(t, jobstest.Request("acme", fmt.Sprintf("stack-%d", i)), tgz)
	}
	jobstest.Eventually(t, waitLong, "jobs did not all reach their wait", func() bool {
		v, err := gaugeValue(reg, "deployq_build_waiting_jobs", metrics.BuildWaitPoll)
		return err == nil && v == n
	})
	tr.CloseIdleConnections()
	// A few goroutines of the worker's own may start after the count
	// above (its subscriptions); the connections' are two for each job.
	const slack = 16
	jobstest.Eventually(t, waitLong, "connections did not close", func() bool { return runtime.NumGoroutine() <= goroutines+n+slack })
	perJob := (stacksAfterGC() - base) / n
	if perJob > maxWaitingStack {
		t.Fatalf("a waiting job holds %d bytes of stack, want at most %d: a frame on the waiting path grew (see the comment above)", perJob, maxWaitingStack)
	}
	t.Logf("%d bytes of stack per waiting job", perJob)
}

// maxWaitingStack is the stack a waiting job may hold: the smallest
// stack, 8 KiB, and a margin for goroutines that come and go around the
// measure (seen: 8–11 KiB per job over 256 jobs, with and without the
// race detector).
// A doubled stack is 16 KiB and more.
const maxWaitingStack = 14 << 10

// stacksAfterGC is the stack memory in use once the runtime has shrunk
// every idle stack as far as it goes (each GC halves one at most).
func stacksAfterGC() int64 {
	for range 6 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.StackInuse)
}
