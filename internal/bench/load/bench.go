package load

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// runner is what every measurement of one run shares.
type runner struct {
	o    options
	tmp  string // parent of every measurement's NATS store
	tgz  []byte // the one app every request deploys
	seed int64
	log  *slog.Logger
}

// run measures everything, prints the tables and writes the JSON. It
// returns the exit code.
func run(ctx context.Context, o options, stdout, stderr io.Writer) int {
	tmp, err := os.MkdirTemp("", "loadbench-")
	if err != nil {
		fmt.Fprintf(stderr, "loadbench: %v\n", err)
		return 1
	}
	seed := bench.Seed(o.seed)
	b := &runner{
		o: o, tmp: tmp, seed: seed,
		tgz: vercelsim.Tarball(map[string]string{
			"package.json":   `{"name":"loadbench","scripts":{"build":"next build"}}`,
			"app/page.tsx":   `export default function Page() { return <h1>loadbench</h1> }`,
			"next.config.js": `module.exports = {}`,
		}),
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	began := time.Now()
	rep := report{Machine: bench.DescribeMachine(began), Settings: settingsOf(o, b)}
	failed := false
	if err := measureAll(ctx, b, &rep, stderr); err != nil {
		fmt.Fprintf(stderr, "loadbench: %v\n", err)
		rep.Problems = append(rep.Problems, err.Error())
		failed = true
	}
	rep.WallSeconds = time.Since(began).Seconds()
	rep.summarize()
	printReport(stdout, rep)
	if o.outDir != "" {
		if err := bench.WriteJSON(filepath.Join(o.outDir, "loadbench.json"), rep); err != nil {
			fmt.Fprintf(stderr, "loadbench: %v\n", err)
			failed = true
		}
	}
	return bench.Finish(stderr, "loadbench", tmp, failed, o.keep)
}

// measureAll runs the measurements in rounds, so that each figure sees the
// machine in the same states as the others: a noisy neighbour in the
// middle of the run touches every figure once rather than one figure
// entirely.
func measureAll(ctx context.Context, b *runner, rep *report, stderr io.Writer) error {
	o := b.o
	say := func(format string, args ...any) {
		fmt.Fprintf(stderr, "loadbench: "+format+"\n", args...)
	}
	say("warming up (one untimed pair of item 1; temporary files in %s)", b.tmp)
	if _, err := runQueued(ctx, b, "queued", max(o.n/4, o.warm), o.concurrency, o.warm, nil); err != nil {
		return fmt.Errorf("warm-up, queued: %w", err)
	}
	if _, err := runDirect(ctx, b, max(o.n/4, o.warm), o.concurrency, o.warm, nil); err != nil {
		return fmt.Errorf("warm-up, direct: %w", err)
	}
	for i := range o.rounds {
		// Rotate which mode goes first, so a drift over the run (heat,
		// a neighbour) does not always favour the same one.
		modes := []string{"queued", "direct", "quiet"}
		modes = slices.Concat(modes[i%3:], modes[:i%3])
		for _, m := range modes {
			var r queueRun
			var err error
			if m == "direct" {
				r, err = runDirect(ctx, b, o.n, o.concurrency, o.warm, nil)
			} else {
				r, err = runQueued(ctx, b, m, o.n, o.concurrency, o.warm, nil)
			}
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", i+1, m, err)
			}
			switch m {
			case "queued":
				rep.Queue.Queued = append(rep.Queue.Queued, r)
			case "quiet":
				rep.Queue.Quiet = append(rep.Queue.Quiet, r)
			default:
				rep.Queue.Direct = append(rep.Queue.Direct, r)
			}
			say("round %d/%d: %-6s %7.0f jobs/s (%d jobs in %.2f s, %d failed, %.2f API calls/job)",
				i+1, o.rounds, m, r.JobsPerSecond, r.Jobs, r.Seconds, r.Failed, r.APICallsPerJob)
		}
		br, err := runBroker(ctx, b)
		if err != nil {
			return fmt.Errorf("round %d, broker: %w", i+1, err)
		}
		rep.Broker.Runs = append(rep.Broker.Runs, br)
		say("round %d/%d: broker %7.0f async publishes/s, %7.0f consume+ack/s, %6.0f sync publishes/s",
			i+1, o.rounds, br.PublishAsync, br.ConsumeAck, br.PublishSync)
		for _, g := range []struct{ g, n int }{{1, o.submitN1}, {o.submitGoroutines, o.submitN}} {
			sr, err := runSubmit(ctx, b, g.g, g.n)
			if err != nil {
				return fmt.Errorf("round %d, submit ×%d: %w", i+1, g.g, err)
			}
			rep.Submit.Runs = append(rep.Submit.Runs, sr)
			say("round %d/%d: submit ×%-3d %7.0f requests/s", i+1, o.rounds, g.g, sr.PerSecond)
		}
	}

	if o.cpuProfile != "" || o.memProfile != "" {
		say("profiling one more queued run")
		if _, err := runQueued(ctx, b, "queued", o.n, o.concurrency, o.warm, newProfiler(o.cpuProfile, o.memProfile)); err != nil {
			return fmt.Errorf("profiled queued run: %w", err)
		}
		rep.Profiles = append(rep.Profiles, o.cpuProfile, o.memProfile, memBasePath(o.memProfile))
		if o.profileDir != "" {
			say("profiling one more direct run")
			cpu, mem := filepath.Join(o.profileDir, "direct-cpu.pprof"), filepath.Join(o.profileDir, "direct-mem.pprof")
			if _, err := runDirect(ctx, b, o.n, o.concurrency, o.warm, newProfiler(cpu, mem)); err != nil {
				return fmt.Errorf("profiled direct run: %w", err)
			}
			rep.Profiles = append(rep.Profiles, cpu, mem, memBasePath(mem))
		}
	}

	if o.skipLatency {
		return nil
	}
	base := spreadOf(jobsPerSecond(rep.Queue.Queued)).Median
	perSecond := o.latencyRate
	if perSecond <= 0 {
		perSecond = o.latencyLoad * base
	}
	say("latency: %.0f jobs/s for %s (+ %s warm-up), builds of %s", perSecond, o.latencyDuration, o.latencyWarmup, o.latencyBuild)
	lr, err := runLatency(ctx, b, base, perSecond)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	rep.Latency = &lr
	return nil
}

func jobsPerSecond(runs []queueRun) []float64 {
	return figures(runs, func(r queueRun) float64 { return r.JobsPerSecond })
}
