package budget

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// run measures every strategy, prints the tables and writes the files. It
// returns the exit code: 1 when a strategy could not be measured or did not
// finish in time (the files are still written, marked by the problems).
func run(ctx context.Context, o options, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "budgetbench: find own binary: %v\n", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "budgetbench-")
	if err != nil {
		fmt.Fprintf(stderr, "budgetbench: %v\n", err)
		return 1
	}
	seed := bench.Seed(o.seed)
	rep := report{Machine: bench.DescribeMachine(time.Now()), Settings: settingsOf(o, seed)}
	fmt.Fprintf(stderr, "budgetbench: %d deploys per strategy (%v), %d processes × %d, builds %s; temporary files in %s\n",
		o.n, o.strategies, o.processes, o.concurrency, o.buildTime, tmp)

	// Every strategy deploys the same small app.
	tgz := vercelsim.Tarball(map[string]string{
		"package.json":   `{"name":"budgetbench","scripts":{"build":"next build"}}`,
		"app/page.tsx":   `export default function Page() { return <h1>budgetbench</h1> }`,
		"next.config.js": `module.exports = {}`,
	})

	runs := make([]*runData, len(o.strategies))
	errs := make([]error, len(o.strategies))
	measureOne := func(i int) {
		s := o.strategies[i]
		dir := filepath.Join(tmp, string(s))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			errs[i] = err
			return
		}
		fmt.Fprintf(stderr, "budgetbench: %-6s starting\n", s)
		runs[i], errs[i] = runStrategy(ctx, o, runSetup{strategy: s, exe: exe, dir: dir, tarball: tgz, seed: seed, progress: stderr})
		fmt.Fprintf(stderr, "budgetbench: %-6s done\n", s)
	}
	if o.sequential {
		for i := range o.strategies {
			measureOne(i)
		}
	} else {
		var wg sync.WaitGroup
		for i := range o.strategies {
			wg.Go(func() { measureOne(i) })
		}
		wg.Wait()
	}

	failed := false
	for i, d := range runs {
		if errs[i] != nil {
			failed = true
			fmt.Fprintf(stderr, "budgetbench: %s: %v\n", o.strategies[i], errs[i])
			if d != nil {
				fmt.Fprintf(stderr, "budgetbench: %s: worker logs in %s\n", o.strategies[i], d.logPath)
			}
			continue
		}
		if d.timedOut {
			failed = true
			slices.Sort(d.missing)
			fmt.Fprintf(stderr, "budgetbench: %s: no terminal event for %d requests, e.g. %v; worker logs in %s\n",
				d.strategy, len(d.missing), d.missing[:min(len(d.missing), 10)], d.logPath)
		}
		if len(d.problems) > 0 {
			fmt.Fprintf(stderr, "budgetbench: %s: see the warnings; worker logs in %s\n", d.strategy, d.logPath)
		}
		rep.Results = append(rep.Results, summarize(o, d))
	}
	if len(rep.Results) > 0 {
		printTables(stdout, rep)
		if err := writeOutputs(o, rep); err != nil {
			fmt.Fprintf(stderr, "budgetbench: %v\n", err)
			failed = true
		}
	}
	return bench.Finish(stderr, "budgetbench", tmp, failed, o.keep)
}

func settingsOf(o options, seed int64) settings {
	limits := make(map[string]string, len(o.limits))
	for ep, l := range o.limits {
		limits[string(ep)] = l.String()
	}
	return settings{
		Requests: o.n, Processes: o.processes, Concurrency: o.concurrency,
		BuildTime: o.buildTime.String(), BuildJitter: o.buildJitter.String(),
		Limits: limits, Bottleneck: string(o.bottleneck), Seed: seed,
		Concurrent: !o.sequential, Timeout: o.timeout.String(), SmoothSeconds: o.smooth,
		HeadersStripped: o.stripHeaders, Command: o.command,
	}
}

// writeOutputs writes the JSON results and the SVG plot where asked.
func writeOutputs(o options, rep report) error {
	if o.jsonOut != "" {
		if err := bench.WriteJSON(o.jsonOut, rep); err != nil {
			return err
		}
	}
	if o.svgOut != "" {
		if err := writeFile(o.svgOut, plot(rep, o.smooth)); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// replot redraws the plot and prints the tables of an earlier run, so the
// drawing can change without measuring again.
func replot(o options, stdout, stderr io.Writer) int {
	data, err := os.ReadFile(o.replot)
	if err != nil {
		fmt.Fprintf(stderr, "budgetbench: %v\n", err)
		return 1
	}
	var rep report
	if err := json.Unmarshal(data, &rep); err != nil {
		fmt.Fprintf(stderr, "budgetbench: %s: %v\n", o.replot, err)
		return 1
	}
	printTables(stdout, rep)
	if o.svgOut != "" {
		if err := writeFile(o.svgOut, plot(rep, rep.Settings.SmoothSeconds)); err != nil {
			fmt.Fprintf(stderr, "budgetbench: %v\n", err)
			return 1
		}
	}
	return 0
}
