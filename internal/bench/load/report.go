package load

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/deployq/deployq/internal/bench"
)

// targetRatio is what deployq aims for: the queue costing no more than a
// fifth of the throughput of running the pipeline directly.
const targetRatio = 0.8

// busyNeighbour is the share of the machine that other processes may use
// during a run before the run is flagged as disturbed.
const busyNeighbour = 0.10

// report is the whole run, as written to loadbench.json. Rates are per
// second, latencies in milliseconds, ratios plain fractions.
type report struct {
	Machine     bench.Machine `json:"machine"`
	Settings    settings      `json:"settings"`
	Queue       queueResult   `json:"queueOverhead"`
	Broker      brokerResult  `json:"brokerBaseline"`
	Submit      submitResult  `json:"submitThroughput"`
	Latency     *latencyRun   `json:"latency,omitempty"`
	Profiles    []string      `json:"profiles,omitempty"`
	WallSeconds float64       `json:"wallSeconds"`
	Problems    []string      `json:"problems,omitempty"`
	Derived     derivedRatios `json:"derived"`
}

// settings are the knobs of the run.
type settings struct {
	Jobs             int    `json:"jobsPerRun"`
	Concurrency      int    `json:"concurrency"`
	Producers        int    `json:"producers"`
	Warmup           int    `json:"warmupJobsPerRun"`
	Rounds           int    `json:"rounds"`
	RawMessages      int    `json:"rawMessages"`
	RawPayloadBytes  int    `json:"rawPayloadBytes"`
	RawBatch         int    `json:"rawFetchBatch"`
	RawPending       int    `json:"rawMaxAsyncPending"`
	RequestBytes     int    `json:"requestBytes"`
	TarballBytes     int    `json:"tarballBytes"`
	SubmitN1         int    `json:"submitRequestsOneGoroutine"`
	SubmitN          int    `json:"submitRequestsManyGoroutines"`
	SubmitGoroutines int    `json:"submitGoroutines"`
	SubmitBatch      int    `json:"submitBatchMaxPerCall"`
	Seed             int64  `json:"simulatorSeed"`
	Command          string `json:"command"`
}

func settingsOf(o options, b *runner) settings {
	reqBytes := 0
	if data, err := json.Marshal(withSource(request("job-00000"), b.tgz)); err == nil {
		reqBytes = len(data)
	}
	return settings{
		Jobs: o.n, Concurrency: o.concurrency, Producers: o.producers, Warmup: o.warm, Rounds: o.rounds,
		RawMessages: o.rawN, RawPayloadBytes: rawPayloadBytes, RawBatch: o.rawBatch, RawPending: o.rawPending,
		RequestBytes: reqBytes, TarballBytes: len(b.tgz),
		SubmitN1: o.submitN1, SubmitN: o.submitN, SubmitGoroutines: o.submitGoroutines, SubmitBatch: o.submitBatch,
		Seed: b.seed, Command: o.command,
	}
}

// queueResult is item 1.
type queueResult struct {
	Queued []queueRun `json:"queuedRuns"`
	Direct []queueRun `json:"directRuns"`
	// Quiet are queued runs of a worker that publishes no progress
	// events (worker.Config.NoProgressEvents), in the same rounds.
	Quiet []queueRun `json:"quietRuns,omitempty"`
	// QueuedRate and DirectRate summarize jobs/s; Ratio the per-round
	// queued ÷ direct (each round's two runs were side by side).
	QueuedRate spread  `json:"queuedJobsPerSecond"`
	DirectRate spread  `json:"directJobsPerSecond"`
	Ratio      spread  `json:"queuedOverDirect"`
	Target     float64 `json:"targetRatio"`
	// QueuedCPU and DirectCPU summarize CPU µs per job; CPURatio the
	// per-round direct ÷ queued CPU per job, which is what a/b would be
	// on a machine where both runs are CPU-bound.
	QueuedCPU spread `json:"queuedCpuMicrosecondsPerJob"`
	DirectCPU spread `json:"directCpuMicrosecondsPerJob"`
	CPURatio  spread `json:"directOverQueuedCpuPerJob"`
	// QuietRate, QuietRatio (quiet ÷ direct per round) and QuietCPU
	// summarize the quiet runs.
	QuietRate  spread `json:"quietJobsPerSecond"`
	QuietRatio spread `json:"quietOverDirect"`
	QuietCPU   spread `json:"quietCpuMicrosecondsPerJob"`
}

// brokerResult is item 2.
type brokerResult struct {
	Runs         []brokerRun `json:"runs"`
	PublishAsync spread      `json:"publishAsyncPerSecond"`
	ConsumeAck   spread      `json:"consumeAckPerSecond"`
	PublishSync  spread      `json:"publishSyncPerSecond"`
}

// submitResult is item 3.
type submitResult struct {
	Runs []submitRun `json:"runs"`
	One  spread      `json:"oneGoroutinePerSecond"`
	Many spread      `json:"manyGoroutinesPerSecond"`
	// BatchOne and BatchMany are SubmitBatch's requests/s;
	// BatchOneOverPublish and BatchManyOverPublish divide each round's
	// by the async publish rate of item 2 in the same round.
	BatchOne             spread `json:"batchOneGoroutinePerSecond"`
	BatchMany            spread `json:"batchManyGoroutinesPerSecond"`
	BatchOneOverPublish  spread `json:"batchOneOverPublishAsyncSameRound"`
	BatchManyOverPublish spread `json:"batchManyOverPublishAsyncSameRound"`
}

// derivedRatios relate the medians of different items.
type derivedRatios struct {
	QueuedOverPublishAsync  float64 `json:"queuedJobsOverPublishAsync"`
	QueuedOverConsumeAck    float64 `json:"queuedJobsOverConsumeAck"`
	SubmitOneOverPublish    float64 `json:"submitOneOverPublishAsync"`
	SubmitManyOverPublish   float64 `json:"submitManyOverPublishAsync"`
	SubmitOneOverSync       float64 `json:"submitOneOverPublishSync"`
	BatchOneOverSubmitOne   float64 `json:"batchOneOverSubmitOne"`
	BatchManyOverSubmitMany float64 `json:"batchManyOverSubmitMany"`
}

// summarize fills in every summary from the raw runs.
func (r *report) summarize() {
	q := &r.Queue
	q.Target = targetRatio
	q.QueuedRate = spreadOf(jobsPerSecond(q.Queued))
	q.DirectRate = spreadOf(jobsPerSecond(q.Direct))
	// Ratios are taken within a round, whose two runs were side by side.
	var ratios, cpuRatios []float64
	for i := range min(len(q.Queued), len(q.Direct)) {
		ratios = append(ratios, ratio(q.Queued[i].JobsPerSecond, q.Direct[i].JobsPerSecond))
		cpuRatios = append(cpuRatios, ratio(q.Direct[i].CPUPerJob, q.Queued[i].CPUPerJob))
	}
	q.Ratio, q.CPURatio = spreadOf(ratios), spreadOf(cpuRatios)
	var quietRatios []float64
	for i := range min(len(q.Quiet), len(q.Direct)) {
		quietRatios = append(quietRatios, ratio(q.Quiet[i].JobsPerSecond, q.Direct[i].JobsPerSecond))
	}
	q.QuietRate, q.QuietRatio = spreadOf(jobsPerSecond(q.Quiet)), spreadOf(quietRatios)
	q.QuietCPU = spreadOf(figures(q.Quiet, func(r queueRun) float64 { return r.CPUPerJob }))
	q.QueuedCPU = spreadOf(figures(q.Queued, func(r queueRun) float64 { return r.CPUPerJob }))
	q.DirectCPU = spreadOf(figures(q.Direct, func(r queueRun) float64 { return r.CPUPerJob }))
	for _, runs := range [][]queueRun{q.Queued, q.Direct, q.Quiet} {
		for _, run := range runs {
			if run.Failed > 0 {
				r.Problems = append(r.Problems, fmt.Sprintf("%s run: %d of %d jobs failed", run.Mode, run.Failed, run.Jobs))
			}
		}
	}

	var pub, cons, sync []float64
	for _, br := range r.Broker.Runs {
		pub, cons, sync = append(pub, br.PublishAsync), append(cons, br.ConsumeAck), append(sync, br.PublishSync)
	}
	r.Broker.PublishAsync, r.Broker.ConsumeAck, r.Broker.PublishSync = spreadOf(pub), spreadOf(cons), spreadOf(sync)

	// Each round measured one run of each kind, after its broker run: the
	// j-th run of a kind belongs to round j.
	var one, many, batchOne, batchMany, batchOnePub, batchManyPub []float64
	for _, sr := range r.Submit.Runs {
		if sr.Goroutines == 1 {
			one, batchOne = append(one, sr.PerSecond), append(batchOne, sr.BatchPerSecond)
			batchOnePub = append(batchOnePub, ratio(sr.BatchPerSecond, roundPublishAsync(r.Broker.Runs, len(one)-1)))
		} else {
			many, batchMany = append(many, sr.PerSecond), append(batchMany, sr.BatchPerSecond)
			batchManyPub = append(batchManyPub, ratio(sr.BatchPerSecond, roundPublishAsync(r.Broker.Runs, len(many)-1)))
		}
	}
	r.Submit.One, r.Submit.Many = spreadOf(one), spreadOf(many)
	r.Submit.BatchOne, r.Submit.BatchMany = spreadOf(batchOne), spreadOf(batchMany)
	r.Submit.BatchOneOverPublish, r.Submit.BatchManyOverPublish = spreadOf(batchOnePub), spreadOf(batchManyPub)

	r.Derived = derivedRatios{
		QueuedOverPublishAsync:  ratio(q.QueuedRate.Median, r.Broker.PublishAsync.Median),
		QueuedOverConsumeAck:    ratio(q.QueuedRate.Median, r.Broker.ConsumeAck.Median),
		SubmitOneOverPublish:    ratio(r.Submit.One.Median, r.Broker.PublishAsync.Median),
		SubmitManyOverPublish:   ratio(r.Submit.Many.Median, r.Broker.PublishAsync.Median),
		SubmitOneOverSync:       ratio(r.Submit.One.Median, r.Broker.PublishSync.Median),
		BatchOneOverSubmitOne:   ratio(r.Submit.BatchOne.Median, r.Submit.One.Median),
		BatchManyOverSubmitMany: ratio(r.Submit.BatchMany.Median, r.Submit.Many.Median),
	}
	if l := r.Latency; l != nil && l.Failed > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("latency run: %d of %d counted jobs failed", l.Failed, l.Counted))
	}
	// A neighbour's load shows in the figures; say where it was.
	for _, runs := range [][]queueRun{q.Queued, q.Direct, q.Quiet} {
		for i, run := range runs {
			if run.OthersCPU > busyNeighbour {
				r.Problems = append(r.Problems, fmt.Sprintf("round %d, %s run: other processes used %s of the machine", i+1, run.Mode, pctText(run.OthersCPU)))
			}
		}
	}
	if l := r.Latency; l != nil && l.OthersCPU > busyNeighbour {
		r.Problems = append(r.Problems, fmt.Sprintf("latency run: other processes used %s of the machine", pctText(l.OthersCPU)))
	}
}

// printReport writes the results as Markdown tables, ready for
// docs/BENCHMARKS.md.
func printReport(w io.Writer, r report) {
	s, q := r.Settings, r.Queue
	fmt.Fprintf(w, "\n## 1. Queue overhead: %d jobs per run, %d in flight, instant builds, no API latency or limits, %d rounds\n\n",
		s.Jobs, s.Concurrency, s.Rounds)
	fmt.Fprintln(w, "| round | (a) deployq jobs/s | (b) direct jobs/s | a / b | (a) CPU µs/job | (b) CPU µs/job | b / a, CPU per job |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|")
	for i := range min(len(q.Queued), len(q.Direct)) {
		fmt.Fprintf(w, "| %d | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f |\n", i+1, q.Queued[i].JobsPerSecond, q.Direct[i].JobsPerSecond,
			q.Ratio.Runs[i], q.Queued[i].CPUPerJob, q.Direct[i].CPUPerJob, q.CPURatio.Runs[i])
	}
	fmt.Fprintf(w, "| **median** | **%.0f** | **%.0f** | **%.2f** (target ≥ %.2f) | %.0f | %.0f | %.2f |\n",
		q.QueuedRate.Median, q.DirectRate.Median, q.Ratio.Median, q.Target, q.QueuedCPU.Median, q.DirectCPU.Median, q.CPURatio.Median)
	fmt.Fprintf(w, "| min–max | %s | %s | %.2f–%.2f | %s | %s | %.2f–%.2f |\n", rangeText(q.QueuedRate), rangeText(q.DirectRate),
		q.Ratio.Min, q.Ratio.Max, rangeText(q.QueuedCPU), rangeText(q.DirectCPU), q.CPURatio.Min, q.CPURatio.Max)
	if len(q.Queued) > 0 && len(q.Direct) > 0 {
		fmt.Fprintf(w, "\n(a): %d producer goroutines Submit, one worker.Worker runs the jobs, timed from the first Submit to the last terminal event at a Client.Watch; the producers were done after %s of that time (median). (b): the pipeline's API calls made directly (no queue) from %d goroutines. CPU is the whole process's (broker, simulator, clients, GC). Per job: API calls (a) %.2f, (b) %.2f; NATS messages into the server (a) %.1f, (b) %.1f, out of it (a) %.1f, (b) %.1f.\n",
			s.Producers, pctText(submitShare(q.Queued)), s.Concurrency,
			medianOf(q.Queued, func(r queueRun) float64 { return r.APICallsPerJob }),
			medianOf(q.Direct, func(r queueRun) float64 { return r.APICallsPerJob }),
			medianOf(q.Queued, func(r queueRun) float64 { return r.NATSInPerJob }),
			medianOf(q.Direct, func(r queueRun) float64 { return r.NATSInPerJob }),
			medianOf(q.Queued, func(r queueRun) float64 { return r.NATSOutPerJob }),
			medianOf(q.Direct, func(r queueRun) float64 { return r.NATSOutPerJob }))
	}
	if len(q.Quiet) > 0 {
		fmt.Fprintf(w, "\n(a′), the same as (a) with worker.Config.NoProgressEvents (terminal events only), in the same rounds: median %.0f jobs/s (%s), a′ / b = **%.2f** (%.2f–%.2f), CPU %.0f µs/job, NATS messages into the server %.1f per job.\n",
			q.QuietRate.Median, rangeText(q.QuietRate), q.QuietRatio.Median, q.QuietRatio.Min, q.QuietRatio.Max, q.QuietCPU.Median,
			medianOf(q.Quiet, func(r queueRun) float64 { return r.NATSInPerJob }))
	}

	b := r.Broker
	fmt.Fprintf(w, "\n## 2. Broker baseline: embedded JetStream, loopback TCP, file storage, R1, work queue, %d B messages, %d per measurement\n\n",
		s.RawPayloadBytes, s.RawMessages)
	fmt.Fprintln(w, "| figure | median /s | min–max | deployq (a) jobs/s ÷ this |")
	fmt.Fprintln(w, "|---|--:|--:|--:|")
	fmt.Fprintf(w, "| async publish (≤ %d pending) | %.0f | %s | %s |\n", s.RawPending, b.PublishAsync.Median, rangeText(b.PublishAsync), pctText(r.Derived.QueuedOverPublishAsync))
	fmt.Fprintf(w, "| consume + ack (pull, Fetch %d, explicit ack) | %.0f | %s | %s |\n", s.RawBatch, b.ConsumeAck.Median, rangeText(b.ConsumeAck), pctText(r.Derived.QueuedOverConsumeAck))
	fmt.Fprintf(w, "| sync publish, 1 goroutine (one round trip) | %.0f | %s | |\n", b.PublishSync.Median, rangeText(b.PublishSync))

	sb := r.Submit
	fmt.Fprintf(w, "\n## 3. Submit throughput: jobs.Client.Submit and SubmitBatch, one shared %d B tarball, %d B requests, no worker running\n\n", s.TarballBytes, s.RequestBytes)
	fmt.Fprintln(w, "| call | goroutines | requests | median requests/s | min–max | ÷ async publish | ÷ sync publish |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|")
	fmt.Fprintf(w, "| Submit | 1 | %d | %.0f | %s | %s | %.2f |\n", s.SubmitN1, sb.One.Median, rangeText(sb.One),
		pctText(r.Derived.SubmitOneOverPublish), r.Derived.SubmitOneOverSync)
	fmt.Fprintf(w, "| Submit | %d | %d | %.0f | %s | %s | |\n", s.SubmitGoroutines, s.SubmitN, sb.Many.Median, rangeText(sb.Many),
		pctText(r.Derived.SubmitManyOverPublish))
	fmt.Fprintf(w, "| SubmitBatch, %d a call | 1 | %d | %.0f | %s | %s (%s) | |\n", batchSize(s.SubmitN1, 1, s.SubmitBatch), s.SubmitN1,
		sb.BatchOne.Median, rangeText(sb.BatchOne), pctText(sb.BatchOneOverPublish.Median), pctRangeText(sb.BatchOneOverPublish))
	fmt.Fprintf(w, "| SubmitBatch, %d a call | %d | %d | %.0f | %s | %s (%s) | |\n", batchSize(s.SubmitN, s.SubmitGoroutines, s.SubmitBatch),
		s.SubmitGoroutines, s.SubmitN, sb.BatchMany.Median, rangeText(sb.BatchMany), pctText(sb.BatchManyOverPublish.Median), pctRangeText(sb.BatchManyOverPublish))
	fmt.Fprintf(w, "\nEach figure on a fresh server, SubmitBatch right after Submit. ÷ async publish: Submit, the medians' ratio; SubmitBatch, the median (range) of each round's rate ÷ that round's async publish rate (item 2). SubmitBatch ÷ Submit: %.1f× from 1 goroutine, %.1f× from %d.\n",
		r.Derived.BatchOneOverSubmitOne, r.Derived.BatchManyOverSubmitMany, s.SubmitGoroutines)

	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "\n## 4. Latency at %.0f jobs/s (%s of (a)'s median %.0f), builds of %s (+ up to %s), %d worker slots, open loop\n\n",
			l.TargetRate, pctText(ratio(l.TargetRate, l.BaseJobsPerSecond)), l.BaseJobsPerSecond, l.BuildTime, l.BuildJitter, l.Concurrency)
		fmt.Fprintf(w, "%d requests submitted evenly spaced; the %d due after the first %.0f s counted (achieved %.1f jobs/s over %.0f s); %d failed.\n\n",
			l.Submitted, l.Counted, l.WarmupSeconds, l.AchievedRate, l.MeasuredSeconds, l.Failed)
		fmt.Fprintln(w, "| interval | jobs | p50 | p99 | min | max |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|")
		for _, row := range []struct {
			name string
			l    latency
		}{
			{"(i) Submit returned → first Vercel API call", l.SubmitToFirstCall},
			{"(ii) deployment READY → terminal event at the watcher", l.ReadyToTerminal},
			{"  of which READY → the status poll that saw it", l.ReadyToPoll},
			{"  of which that poll → terminal event", l.PollToTerminal},
			{"Submit returned → terminal event", l.SubmitToTerminal},
			{"Submit call itself", l.SubmitCall},
			{"Submit start − its due time (open-loop lateness)", l.Lateness},
		} {
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s |\n", row.name, row.l.Count, msText(row.l.P50), msText(row.l.P99), msText(row.l.Min), msText(row.l.Max))
		}
	}

	if len(r.Profiles) > 0 {
		fmt.Fprintf(w, "\nprofiles: %s\n", strings.Join(r.Profiles, ", "))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "\nwarning: %s\n", p)
	}
	m := r.Machine
	fmt.Fprintf(w, "\nmachine: %d CPUs (nproc), %s, %s %s/%s, %s; whole run %.0f s; command: %s; simulator seed %d\n",
		m.NProc, m.CPUModel, m.GoVersion, m.OS, m.Arch, m.Date, r.WallSeconds, s.Command, s.Seed)
}

// figures picks one figure of every run, in run order.
func figures(runs []queueRun, f func(queueRun) float64) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = f(r)
	}
	return out
}

// medianOf is the median of one figure over runs.
func medianOf(runs []queueRun, f func(queueRun) float64) float64 {
	return spreadOf(figures(runs, f)).Median
}

// submitShare is the median share of a queued run's time that its
// producers needed to submit everything.
func submitShare(runs []queueRun) float64 {
	return medianOf(runs, func(r queueRun) float64 { return ratio(r.SubmitSeconds, r.Seconds) })
}

func rangeText(s spread) string {
	return fmt.Sprintf("%.0f–%.0f (±%.0f %%)", s.Min, s.Max, 50*s.relSpread())
}

// roundPublishAsync is round i's async publish rate of item 2, 0 when that
// round has none.
func roundPublishAsync(runs []brokerRun, i int) float64 {
	if i < 0 || i >= len(runs) {
		return 0
	}
	return runs[i].PublishAsync
}

func pctRangeText(s spread) string {
	return pctText(s.Min) + "–" + pctText(s.Max)
}

func pctText(f float64) string {
	if f < 0.01 {
		return fmt.Sprintf("%.2f %%", 100*f)
	}
	return fmt.Sprintf("%.1f %%", 100*f)
}

func msText(ms float64) string {
	if ms < 10 && ms > -10 {
		return fmt.Sprintf("%.2f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}
