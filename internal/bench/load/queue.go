package load

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// queueRun is one measurement of item 1: N jobs through deployq or
// by the pipeline's calls made directly (direct.go).
type queueRun struct {
	// Mode is "queued", "quiet" (queued by a worker that publishes no
	// progress events) or "direct".
	Mode          string  `json:"mode"`
	Jobs          int     `json:"jobs"`
	Seconds       float64 `json:"seconds"`
	JobsPerSecond float64 `json:"jobsPerSecond"`
	// SubmitSeconds is, for queued runs, the first Submit to the last
	// Submit's return: how far the producers stayed ahead of the workers.
	SubmitSeconds float64 `json:"submitSeconds,omitempty"`
	Failed        int     `json:"failed"`
	// APICallsPerJob is every request the simulator got during the timed
	// part ÷ jobs: both modes must do the same API work.
	APICallsPerJob float64 `json:"apiCallsPerJob"`
	// NATSInPerJob and NATSOutPerJob are messages the server received
	// from and sent to clients during the timed part ÷ jobs: requests and
	// publishes in, replies, acks and deliveries out.
	NATSInPerJob  float64 `json:"natsMessagesInPerJob"`
	NATSOutPerJob float64 `json:"natsMessagesOutPerJob"`
	// CPUPerJob is the process's CPU time (all of it: server, simulator,
	// clients, GC) during the timed part ÷ jobs, in microseconds.
	CPUPerJob float64 `json:"cpuMicrosecondsPerJob"`
	// OthersCPU is the share of the machine other processes used during
	// the timed part: above a few percent, the run shared its CPUs.
	OthersCPU float64 `json:"otherProcessesCpuShare"`
}

// meter reads what a timed part cost: CPU time, broker messages and
// API calls, between start and stop.
type meter struct {
	e        *env
	cpu      time.Duration
	busy     time.Duration
	at       time.Time
	in, out  int64
	apiCalls int
}

func startMeter(e *env) meter {
	in, out := e.natsMsgs()
	return meter{e: e, cpu: processCPU(), busy: machineBusy(), at: time.Now(), in: in, out: out, apiCalls: apiCalls(e.sim.Stats())}
}

// othersCPU is the share of the machine other processes took since start.
func (m meter) othersCPU() float64 {
	return othersShare(machineBusy()-m.busy, processCPU()-m.cpu, time.Since(m.at), runtime.NumCPU())
}

// stop fills in r's per-job costs. It is called right when the timed part
// ends, before profiles are written (which collect garbage).
func (m meter) stop(r *queueRun) {
	r.OthersCPU = m.othersCPU()
	cpu := processCPU()
	in, out := m.e.natsMsgs()
	r.CPUPerJob = ratio(float64((cpu - m.cpu).Microseconds()), float64(r.Jobs))
	r.NATSInPerJob = ratio(float64(in-m.in), float64(r.Jobs))
	r.NATSOutPerJob = ratio(float64(out-m.out), float64(r.Jobs))
	r.APICallsPerJob = ratio(float64(apiCalls(m.e.sim.Stats())-m.apiCalls), float64(r.Jobs))
}

// instantSim is the simulator of item 1: no latency, no limits, builds
// that are READY at once, so only deployq's own work takes time.
func instantSim(seed int64) *vercelsim.Config {
	return &vercelsim.Config{BuildTime: -1, Token: benchToken, TeamID: benchTeam, Seed: seed}
}

// instantPipeline expects builds of a millisecond: with the default
// estimate (30 s) the first status poll would wait for a build that is
// long done. The estimate then follows the observed (zero) build times.
func instantPipeline() worker.PipelineConfig {
	return worker.PipelineConfig{ExpectedBuild: time.Millisecond}
}

// runQueued measures item 1(a): n jobs submitted by o.producers
// goroutines through jobs.Client, run by one worker.Worker of c slots,
// timed from the first Submit to the last terminal event at the watcher.
// mode "quiet" runs a worker with worker.Config.NoProgressEvents: what
// the progress events cost.
// warm jobs run first, untimed, on the same server (they also upload the
// tarball and open the connections). prof, when set, profiles the timed
// part.
func runQueued(ctx context.Context, b *runner, mode string, n, c, warm int, prof *profiler) (queueRun, error) {
	r := queueRun{Mode: mode, Jobs: n}
	e, err := newEnv(ctx, b.tmp, b.o.keep, envConfig{name: mode, assets: true, sim: instantSim(b.seed),
		pipeline: instantPipeline(), httpConns: c})
	if err != nil {
		return r, err
	}
	defer e.close()
	f, err := watchTerminal(ctx, e.watch, n+warm)
	if err != nil {
		return r, err
	}
	defer f.Stop()
	stop, err := e.runWorker(ctx, c, b.log, mode == "quiet")
	if err != nil {
		return r, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()

	warmIDs, warmSet := idSet("warm", warm)
	if err := submitAll(ctx, e.client, warmIDs, b.o.producers, b.tgz); err != nil {
		return r, err
	}
	if _, err := await(ctx, f, warmSet, b.o.timeout); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}

	ids, set := idSet("job", n)
	if err := prof.start(); err != nil {
		return r, err
	}
	m := startMeter(e)
	t0 := time.Now()
	err = submitAll(ctx, e.client, ids, b.o.producers, b.tgz)
	submitted := time.Now()
	var got map[string]bench.Ended
	if err == nil {
		got, err = await(ctx, f, set, b.o.timeout)
	}
	m.stop(&r)
	if err = errors.Join(err, prof.stop()); err != nil {
		return r, err
	}
	last, failed := lastOf(got)
	stopped = true
	if err := stop(); err != nil {
		return r, fmt.Errorf("worker: %w", err)
	}
	r.Seconds = last.Sub(t0).Seconds()
	r.JobsPerSecond = rate(n, last.Sub(t0))
	r.SubmitSeconds = submitted.Sub(t0).Seconds()
	r.Failed = failed
	return r, nil
}

// runDirect measures item 1(b): the same n jobs against the same
// simulator, run by c goroutines making the pipeline's calls themselves
// (direct.go), timed from the first call to the last return.
func runDirect(ctx context.Context, b *runner, n, c, warm int, prof *profiler) (queueRun, error) {
	r := queueRun{Mode: "direct", Jobs: n}
	e, err := newEnv(ctx, b.tmp, b.o.keep, envConfig{name: "direct", assets: true, sim: instantSim(b.seed),
		pipeline: instantPipeline(), httpConns: c})
	if err != nil {
		return r, err
	}
	defer e.close()
	// What Submit does before anything runs: the tarball in the bucket.
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	err = e.assets.Sources.Put(sctx, benchTenant, withSource(request(""), b.tgz).Source.SHA1, b.tgz)
	cancel()
	if err != nil {
		return r, fmt.Errorf("store tarball: %w", err)
	}

	warmIDs, _ := idSet("warm", warm)
	dr := &direct{api: e.api, sources: e.assets.Sources, uploads: e.assets.Uploads, team: benchTeam}
	if failed, err := deployAll(ctx, dr, warmIDs, c, b.tgz); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	} else if failed > 0 {
		return r, fmt.Errorf("warm-up: %d of %d jobs failed", failed, warm)
	}
	ids, _ := idSet("job", n)
	if err := prof.start(); err != nil {
		return r, err
	}
	m := startMeter(e)
	t0 := time.Now()
	failed, err := deployAll(ctx, dr, ids, c, b.tgz)
	end := time.Now()
	m.stop(&r)
	if err = errors.Join(err, prof.stop()); err != nil {
		return r, err
	}
	r.Seconds = end.Sub(t0).Seconds()
	r.JobsPerSecond = rate(n, end.Sub(t0))
	r.Failed = failed
	return r, nil
}

// submitAll submits one request per id from g goroutines, as fast as
// Submit returns. It stops at the first error.
func submitAll(ctx context.Context, c *jobs.Client, ids []string, g int, tgz []byte) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range min(g, len(ids)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				sctx, scancel := context.WithTimeout(ctx, setupTimeout)
				_, err := c.Submit(sctx, request(ids[i]), tgz)
				scancel()
				if err != nil {
					once.Do(func() { first = fmt.Errorf("submit %s: %w", ids[i], err) })
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// deployAll runs one job per id through d from c goroutines and counts
// the jobs that failed. Only a context's end is an error: a failed job is
// counted, as a failed queued job is.
func deployAll(ctx context.Context, d *direct, ids []string, c int, tgz []byte) (int, error) {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range min(c, len(ids)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				req := withSource(request(ids[i]), tgz)
				if err := d.deploy(ctx, &req); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(failed.Load()), ctx.Err()
}

// apiCalls is every request the simulator has seen.
func apiCalls(st vercelsim.Stats) int {
	n := 0
	for _, c := range st.Requests {
		n += c
	}
	return n
}
