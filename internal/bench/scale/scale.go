package scale

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/internal/stack"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats-server/v2/server"
)

// Bounds of the scale part's steps besides the flags.
const (
	childReadyTimeout = 60 * time.Second
	// childStopExtra is how long the worker process may take after its
	// grace to hand its jobs back and close; it is killed after that.
	childStopExtra = 60 * time.Second
	scrapeTimeout  = 10 * time.Second
	rampPoll       = time.Second
	rampReport     = 15 * time.Second
	// freeRounds is how many times the diagnostic after the window frees
	// memory: an idle goroutine's stack shrinks by half per collection.
	freeRounds = 3
)

// The series read from the worker process's /metrics.
const (
	mGoroutines  = "go_goroutines"
	mThreads     = "go_threads"
	mHeapInuse   = "go_memstats_heap_inuse_bytes"
	mHeapObjects = "go_memstats_heap_objects"
	mStackInuse  = "go_memstats_stack_inuse_bytes"
	mGoSys       = "go_memstats_sys_bytes"
	mInFlight    = "deployq_jobs_in_flight"
	mProcessed   = "deployq_jobs_processed_total"
	mRedelivered = "deployq_job_redeliveries_total"
)

// scaleReport is the scale part.
type scaleReport struct {
	Machine  bench.Machine `json:"machine"`
	Command  string        `json:"command"`
	Settings scaleSettings `json:"settings"`
	Result   scaleResult   `json:"result"`
}

type scaleSettings struct {
	Jobs              int     `json:"jobs"`
	BuildTime         string  `json:"buildTime"`
	BuildJitter       string  `json:"buildJitter"`
	ExpectedBuild     string  `json:"expectedBuild"`
	Sources           int     `json:"sources"`
	MaxAckPending     int     `json:"maxAckPending"`
	AckWait           string  `json:"ackWait"`
	HeartbeatInterval string  `json:"heartbeatInterval"`
	SubmitParallel    int     `json:"submitParallel"`
	Settle            string  `json:"settle"`
	Window            string  `json:"samplingWindow"`
	SampleEvery       string  `json:"sampleEvery"`
	RSSTargetMB       float64 `json:"rssTargetMB"`
	GOGC              string  `json:"gogc"`
	GOMEMLIMIT        string  `json:"gomemlimit"`
	Seed              int64   `json:"simulatorSeed"`
}

// scaleResult is what the scale part measured. MB are 10^6 bytes.
type scaleResult struct {
	SubmitSeconds float64 `json:"submitSeconds"`
	SubmitPerSec  float64 `json:"submitsPerSecond"`
	// RampSeconds runs from the first submit to the last deployment
	// created: every job then waits in wait_ready.
	RampSeconds    float64 `json:"rampSeconds"`
	RampCPUSeconds float64 `json:"rampWorkerCPUSeconds"`
	Created        int64   `json:"deploymentsCreated"`
	// EndedEarly counts jobs that ended before the window (failures).
	EndedEarly int `json:"jobsEndedBeforeWindow"`
	// Redelivered counts requests delivered more than once by the end of
	// the ramp: a delivery lost between server and worker comes back only
	// after AckWait, and stretches the ramp by as much.
	Redelivered int `json:"redeliveredDuringRamp"`

	Idle    sample        `json:"idleBeforeSubmit"`
	Window  windowSummary `json:"window"`
	PerJob  perJob        `json:"perJob"`
	Samples []sample      `json:"samples"`
	// AfterFree is a look after the window and debug.FreeOSMemory (three
	// times): the memory the jobs in flight hold, without the garbage and
	// oversized stacks the ramp left. A diagnostic, not the target's figure.
	AfterFree *sample `json:"afterFreeOSMemory,omitempty"`

	RSSTargetHolds  bool `json:"rssTargetHoldsInWindow"`
	PeakTargetHolds bool `json:"rssTargetHoldsAtPeak"`

	// HTTPConnsOpened counts the TCP connections the worker opened to the
	// simulator; HTTPConnsPeak the most open at once.
	HTTPConnsOpened int64 `json:"httpConnectionsOpened"`
	HTTPConnsPeak   int64 `json:"httpConnectionsPeak"`
	// ParentRSSMB is this process's RSS (the NATS server and the
	// simulator), for scale.
	ParentRSSMB float64 `json:"parentRSSMB"`

	// EventsStored counts the messages in DEPLOY_EVENTS at the end of the
	// window; EventsExpected is one step_completed event per step before
	// wait_ready per job. Fewer stored means progress events were lost.
	EventsStored   uint64 `json:"eventsStored"`
	EventsExpected uint64 `json:"eventsExpected"`

	StopSeconds float64        `json:"stopSeconds"`
	Exit        string         `json:"workerExit"`
	LogLevels   map[string]int `json:"workerLogLines"`
	// LogWarnings counts the worker's WARN and ERROR lines by message.
	LogWarnings map[string]int `json:"workerWarnings,omitempty"`
	MemProfile  string         `json:"memProfile,omitempty"`
	Problems    []string       `json:"problems,omitempty"`
}

// sample is one look at the worker process.
type sample struct {
	AtSeconds   float64 `json:"atSeconds"` // since the window began
	RSS         int64   `json:"rssBytes"`
	HWM         int64   `json:"hwmBytes"`
	CPUSeconds  float64 `json:"cpuSeconds"` // user + system since the process started
	Goroutines  float64 `json:"goroutines"`
	Threads     float64 `json:"threads"`
	HeapInuse   float64 `json:"heapInuseBytes"`
	HeapObjects float64 `json:"heapObjects"`
	StackInuse  float64 `json:"stackInuseBytes"`
	GoSys       float64 `json:"goSysBytes"`
	InFlight    float64 `json:"jobsInFlight"`
	Processed   float64 `json:"jobsProcessed"`
	Redelivered float64 `json:"redeliveries"`
	NATSInMsgs  int64   `json:"natsMsgsFromWorker"`
	NATSOutMsgs int64   `json:"natsMsgsToWorker"`
	NATSInBytes int64   `json:"natsBytesFromWorker"`
	NATSOutByte int64   `json:"natsBytesToWorker"`
	at          time.Time
}

// runScale runs the scale part: one worker process, every job in flight.
func runScale(ctx context.Context, o options, seed int64, dir string, progress io.Writer) (*scaleReport, error) {
	rep := &scaleReport{
		Machine: bench.DescribeMachine(time.Now()),
		Command: o.command,
		Settings: scaleSettings{
			Jobs: o.jobs, BuildTime: o.scaleBuild.String(), BuildJitter: jitterOf(o.scaleBuild, o.jitterRatio).String(),
			ExpectedBuild: o.scaleExpected.String(), Sources: o.scaleSources, MaxAckPending: o.maxAckPending,
			SubmitParallel: o.submitParallel, Settle: o.settle.String(), Window: o.sample.String(),
			SampleEvery: o.sampleEvery.String(), RSSTargetMB: o.rssTargetMB, Seed: seed,
			GOGC:       orText(o.childGOGC, orText(os.Getenv("GOGC"), "default (100)")),
			GOMEMLIMIT: orText(o.childMemLimit, orText(os.Getenv("GOMEMLIMIT"), "none")),
		},
	}
	res := &rep.Result
	problem := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		res.Problems = append(res.Problems, msg)
		fmt.Fprintf(progress, "scalebench: scale: %s\n", msg)
	}
	fmt.Fprintf(progress, "scalebench: scale: %d jobs in one worker process, builds %s; temporary files in %s\n", o.jobs, o.scaleBuild, dir)

	b, err := startBroker(ctx, dir, jobs.SetupConfig{MaxAckPending: o.maxAckPending})
	if err != nil {
		return nil, err
	}
	defer b.close()
	srv, assets := b.srv, b.assets
	// The worker heartbeats at worker.Config's default, a third of AckWait.
	rep.Settings.AckWait = assets.Config.AckWait.String()
	heartbeat := assets.Config.AckWait / 3
	rep.Settings.HeartbeatInterval = heartbeat.String()
	clientCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	client, err := jobs.NewClient(clientCtx, b.js, jobs.ClientConfig{})
	if err != nil {
		return nil, err
	}

	sim := vercelsim.New(vercelsim.Config{
		BuildTime: o.scaleBuild, BuildJitter: jitterOf(o.scaleBuild, o.jitterRatio),
		Token: simToken, TeamID: benchTeam, Seed: seed,
	})
	rec := newRecorder(sim)
	var conns connCounter
	simURL, stopSim, err := stack.ServeLoopback(rec, conns.track)
	if err != nil {
		return nil, err
	}
	defer stopSim()
	defer sim.Close()

	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	logPath := filepath.Join(dir, "worker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	child, err := startChild(ctx, exe, childOptions{
		natsURL: srv.ClientURL(), simURL: simURL, concurrency: o.jobs,
		expectedBuild: o.scaleExpected, maxAckPending: o.maxAckPending, grace: o.childGrace,
	}, childEnv(o), logFile)
	stopTimeout := o.childGrace + childStopExtra
	defer child.stop(stopTimeout) // kills it at the latest; a no-op after the stop below
	if err != nil {
		return nil, err
	}
	look := func() (sample, error) { return takeSample(child, srv.NATS()) }

	res.Idle, err = look()
	if err != nil {
		return nil, fmt.Errorf("sample the idle worker: %w", err)
	}

	// Submit, then wait until every deployment exists.
	start := time.Now()
	if err := submitAll(ctx, client, o.jobs, o.submitParallel, tarballs(o.scaleSources)); err != nil {
		return nil, err
	}
	res.SubmitSeconds = time.Since(start).Seconds()
	res.SubmitPerSec = float64(o.jobs) / res.SubmitSeconds
	fmt.Fprintf(progress, "scalebench: scale: %d submitted in %.1f s\n", o.jobs, res.SubmitSeconds)
	rampEnd, err := waitRamp(ctx, o, rec, look, start, progress)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		problem("%v", err) // measure what is in flight anyway
	}
	res.Created = rec.created.Load()
	res.RampSeconds = rampEnd.Sub(start).Seconds()
	afterRamp, err := look()
	if err != nil {
		return nil, err
	}
	res.RampCPUSeconds = afterRamp.CPUSeconds - res.Idle.CPUSeconds
	res.EndedEarly = int(afterRamp.Processed)
	res.Redelivered = int(afterRamp.Redelivered)
	if res.Redelivered > 0 {
		problem("%d requests were delivered again during the ramp (lost deliveries come back after AckWait %s)", res.Redelivered, assets.Config.AckWait)
	}
	if res.EndedEarly > 0 {
		problem("%d jobs ended before the window (see the worker log)", res.EndedEarly)
	}
	// The first status poll of the earliest deployment must fall after
	// the window, or the window measures polling too.
	if firstPoll := o.scaleExpected + o.scaleExpected/10; res.RampSeconds+o.settle.Seconds()+o.sample.Seconds() > firstPoll.Seconds() {
		problem("the window ends after the first status polls are due (%s after the first deployment)", firstPoll)
	}

	if err := clock.Sleep(ctx, o.settle); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "scalebench: scale: sampling for %s\n", o.sample)
	apiBefore := rec.requests.Load()
	res.Samples, err = sampleWindow(ctx, look, o.sample, o.sampleEvery)
	if err != nil {
		return nil, err
	}
	res.Window = summarizeWindow(res.Samples)
	res.Window.APIRequests = rec.requests.Load() - apiBefore
	res.Window.HeartbeatsExpectedPerSec = float64(o.jobs) / heartbeat.Seconds()
	res.PerJob = perJobOf(res.Idle, res.Samples, o.jobs)
	targetBytes := o.rssTargetMB * 1e6
	res.RSSTargetHolds = res.Window.RSSMaxMB*1e6 <= targetBytes
	res.PeakTargetHolds = res.Window.HWMMB*1e6 <= targetBytes
	if last := res.Samples[len(res.Samples)-1]; int(last.InFlight) != o.jobs {
		problem("%d jobs in flight at the end of the window, not %d", int(last.InFlight), o.jobs)
	}
	res.EventsExpected = uint64(o.jobs) * uint64(slices.Index(jobs.Steps(), jobs.StepWaitReady))
	ictx, icancel := context.WithTimeout(ctx, setupTimeout)
	info, err := assets.Events.Info(ictx)
	icancel()
	if err != nil {
		problem("read the events stream: %v", err)
	} else if res.EventsStored = info.State.Msgs; res.EventsStored < res.EventsExpected {
		problem("%d progress events stored, %d expected: %d lost", res.EventsStored, res.EventsExpected, res.EventsExpected-res.EventsStored)
	}

	if o.childMemProfile != "" {
		if err := fetchHeapProfile(child.metricsAddr, o.childMemProfile); err != nil {
			problem("heap profile: %v", err)
		} else {
			res.MemProfile = o.childMemProfile
		}
	}
	// The diagnostic: collect and return free memory to the OS a few
	// times (each collection halves an idle goroutine's stack at most),
	// then look again. What is left is what the jobs hold.
	freed := true
	for range freeRounds {
		if _, err := httpDo(http.MethodPost, "http://"+child.metricsAddr+freePath); err != nil {
			problem("free memory in the worker: %v", err)
			freed = false
			break
		}
	}
	if freed {
		if s, err := look(); err == nil {
			s.AtSeconds = s.at.Sub(res.Samples[0].at).Seconds()
			res.AfterFree = &s
		}
	}
	if mem, _, err := readProc(os.Getpid()); err == nil {
		res.ParentRSSMB = float64(mem.RSS) / 1e6
	}
	res.HTTPConnsOpened, res.HTTPConnsPeak = conns.opened.Load(), conns.peak.Load()

	fmt.Fprintf(progress, "scalebench: scale: stopping the worker (SIGTERM)\n")
	stopStart := time.Now()
	res.Exit = child.stop(stopTimeout)
	res.StopSeconds = time.Since(stopStart).Seconds()
	if res.Exit != bench.ExitOK {
		problem("worker process: %s", res.Exit)
	}
	if data, err := os.ReadFile(logPath); err == nil {
		res.LogLevels, res.LogWarnings = logLevels(data), logWarnings(data)
		if n := res.LogLevels["ERROR"]; n > 0 {
			problem("%d ERROR lines in the worker log %s", n, logPath)
		}
	}
	return rep, nil
}

// submitAll submits n requests, parallel at a time, round-robin over the
// sources; it stops at the first error.
func submitAll(ctx context.Context, client *jobs.Client, n, parallel int, tgz [][]byte) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ids := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for i := range ids {
				id := fmt.Sprintf("sb-%05d", i)
				req := jobs.Request{ID: id, Tenant: benchTenant, Name: "scalebench", Framework: "nextjs"}
				sctx, scancel := context.WithTimeout(ctx, submitTimeout)
				_, err := client.Submit(sctx, req, tgz[i%len(tgz)])
				scancel()
				if err != nil {
					cancel(fmt.Errorf("submit %s: %w", id, err))
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case ids <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(ids)
	wg.Wait()
	return context.Cause(ctx)
}

// waitRamp waits until every job's deployment exists, which puts the job
// in wait_ready, and returns when the last one was seen. It gives up when
// jobs ended instead (the rest will not come) or after -ramp-timeout.
func waitRamp(ctx context.Context, o options, rec *recorder, look func() (sample, error), start time.Time, progress io.Writer) (time.Time, error) {
	deadline := start.Add(o.rampTimeout)
	nextReport := time.Now().Add(rampReport)
	for {
		created := rec.created.Load()
		now := time.Now()
		if created >= int64(o.jobs) {
			return now, nil
		}
		if now.After(deadline) {
			return now, fmt.Errorf("only %d of %d deployments exist after %s", created, o.jobs, o.rampTimeout)
		}
		if now.After(nextReport) {
			nextReport = now.Add(rampReport)
			s, err := look()
			if err != nil {
				return now, err
			}
			fmt.Fprintf(progress, "scalebench: scale: %5.0f s: %d deployments created, %d jobs in flight, %d ended, %d redelivered, worker RSS %.0f MB\n",
				now.Sub(start).Seconds(), created, int(s.InFlight), int(s.Processed), int(s.Redelivered), float64(s.RSS)/1e6)
			if int64(s.Processed)+created >= int64(o.jobs) {
				return now, fmt.Errorf("%d jobs ended before their deployment was created", int(s.Processed))
			}
		}
		if err := clock.Sleep(ctx, rampPoll); err != nil {
			return now, err
		}
	}
}

// sampleWindow samples every `every` for `window`, the first sample at once.
func sampleWindow(ctx context.Context, look func() (sample, error), window, every time.Duration) ([]sample, error) {
	var out []sample
	begin := time.Now()
	for i := 0; ; i++ {
		s, err := look()
		if err != nil {
			return out, err
		}
		s.AtSeconds = s.at.Sub(begin).Seconds()
		out = append(out, s)
		next := begin.Add(time.Duration(i+1) * every)
		if next.Sub(begin) > window {
			return out, nil
		}
		if err := clock.Sleep(ctx, time.Until(next)); err != nil {
			return out, err
		}
	}
}

// takeSample reads the worker process's memory and CPU from /proc, its
// runtime and job figures from its /metrics, and its NATS traffic from
// the server's view of its connection.
func takeSample(c *childProc, ns *server.Server) (sample, error) {
	s := sample{at: time.Now()}
	mem, cpu, err := readProc(c.PID())
	if err != nil {
		return s, err
	}
	s.RSS, s.HWM, s.CPUSeconds = mem.RSS, mem.HWM, cpu.Seconds()
	body, err := httpGet("http://" + c.metricsAddr + "/metrics")
	if err != nil {
		return s, fmt.Errorf("scrape the worker's metrics: %w", err)
	}
	m := metricValues(body, mGoroutines, mThreads, mHeapInuse, mHeapObjects, mStackInuse, mGoSys, mInFlight, mProcessed, mRedelivered)
	s.Goroutines, s.Threads = m[mGoroutines], m[mThreads]
	s.HeapInuse, s.HeapObjects, s.StackInuse, s.GoSys = m[mHeapInuse], m[mHeapObjects], m[mStackInuse], m[mGoSys]
	s.InFlight, s.Processed, s.Redelivered = m[mInFlight], m[mProcessed], m[mRedelivered]
	cz, err := ns.Connz(&server.ConnzOptions{Limit: 1024})
	if err != nil {
		return s, err
	}
	for _, ci := range cz.Conns {
		if ci.Name == childConnName {
			s.NATSInMsgs, s.NATSOutMsgs, s.NATSInBytes, s.NATSOutByte = ci.InMsgs, ci.OutMsgs, ci.InBytes, ci.OutBytes
		}
	}
	return s, nil
}

func httpGet(url string) ([]byte, error) { return httpDo(http.MethodGet, url) }

func httpDo(method, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	// Without this, net/http asks for gzip and the worker would allocate
	// compressors for every scrape: memory the jobs are not using.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// fetchHeapProfile saves the worker process's heap profile to path.
func fetchHeapProfile(addr, path string) error {
	data, err := httpGet("http://" + addr + heapPath)
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, data, 0o644)
}

// childProc is the worker process of the scale part, and the loopback
// address it serves its metrics and heap profiles on.
type childProc struct {
	*bench.Process
	metricsAddr string
}

// childEnv is the worker process's environment: this one, with the Go
// runtime's GOGC and GOMEMLIMIT as the flags set them.
func childEnv(o options) []string {
	env := os.Environ()
	if o.childGOGC != "" {
		env = append(env, "GOGC="+o.childGOGC)
	}
	if o.childMemLimit != "" {
		env = append(env, "GOMEMLIMIT="+o.childMemLimit)
	}
	return env
}

// startChild starts the worker process and waits until it serves its
// metrics and takes work. On error the returned process, if any, still
// needs stop.
func startChild(ctx context.Context, exe string, o childOptions, env []string, logFile *os.File) (*childProc, error) {
	cmd := exec.Command(exe, append([]string{"scale"}, childArgs(o)...)...)
	cmd.Env = env
	cmd.Stderr = logFile
	p, err := bench.StartProcess(cmd)
	if err != nil {
		return nil, fmt.Errorf("the worker process: %w", err)
	}
	c := &childProc{Process: p}
	line, err := p.Ready(ctx, childReadyTimeout)
	if err != nil {
		return c, err
	}
	word, addr, ok := strings.Cut(line, " ")
	if !ok || word != readyWord || addr == "" {
		return c, fmt.Errorf("the worker process did not start (said %q; see its log)", line)
	}
	c.metricsAddr = addr
	return c, nil
}

// stop sends SIGTERM and waits up to timeout, then kills the process. It
// returns how the process ended; later calls return the same.
func (c *childProc) stop(timeout time.Duration) string {
	if c == nil {
		return ""
	}
	return bench.StopProcesses(timeout, c.Process)[0]
}

// logLevels counts the lines of a text-handler log by level.
func logLevels(data []byte) map[string]int {
	out := map[string]int{}
	for line := range strings.Lines(string(data)) {
		for f := range strings.FieldsSeq(line) {
			if lvl, ok := strings.CutPrefix(f, "level="); ok {
				out[lvl]++
				break
			}
		}
	}
	return out
}

// logWarnings counts a text-handler log's WARN and ERROR lines by their
// msg attribute.
func logWarnings(data []byte) map[string]int {
	out := map[string]int{}
	for line := range strings.Lines(string(data)) {
		if !strings.Contains(line, " level=WARN ") && !strings.Contains(line, " level=ERROR ") {
			continue
		}
		_, rest, ok := strings.Cut(line, " msg=")
		if !ok {
			continue
		}
		msg := rest
		if strings.HasPrefix(rest, `"`) {
			// A quoted value ends at the first unescaped quote.
			if v, err := strconv.QuotedPrefix(rest); err == nil {
				msg, _ = strconv.Unquote(v)
			}
		} else if i := strings.IndexByte(rest, ' '); i >= 0 {
			msg = rest[:i]
		}
		out[strings.TrimSpace(msg)]++
	}
	return out
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
