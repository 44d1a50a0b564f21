// Command bench runs deployq's benchmarks, each measuring side by side in
// one run what it compares (docs/BENCHMARKS.md explains every figure):
//
//	bench load [flags]     what the queue costs around the pipeline, the broker's own rates,
//	                       Submit's rate and latency at part load (internal/bench/load)
//	bench scale [flags]    API requests per deploy with long builds, and 10 000 deploys in
//	                       flight in one worker process (internal/bench/scale)
//	bench budget [flags]   the fleet-wide API budget against per-process buckets and the
//	                       Prisma guide's retries (internal/bench/budget)
//	bench fair [flags]     fair dispatch across tenants against arrival order: a noisy
//	                       neighbour, skewed tenants, a crowd, a cluster (internal/bench/fair)
//	bench path [flags]     submit to claim URL at low load, each call at its step against
//	                       independent calls sent early (internal/bench/critpath)
//	bench apps [flags]     a day of traffic compressed against a database cap below the
//	                       day's new apps: redeploys, claims, expiry (internal/bench/appday)
//	bench console [flags]  the console's first render with 10 000 jobs kept and 10 000
//	                       queued, in headless Chromium; -screenshots DIR (internal/bench/consolepage)
//
// `make bench` runs them all. `bench <name> -h` lists a benchmark's
// flags. The scale and budget benchmarks start worker processes by
// running this binary again with a hidden mode of their own.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/deployq/deployq/internal/bench/appday"
	"github.com/deployq/deployq/internal/bench/budget"
	"github.com/deployq/deployq/internal/bench/consolepage"
	"github.com/deployq/deployq/internal/bench/critpath"
	"github.com/deployq/deployq/internal/bench/fair"
	"github.com/deployq/deployq/internal/bench/load"
	"github.com/deployq/deployq/internal/bench/scale"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdout, "usage: bench load|scale|budget|fair|path|apps|console [flags]   (bench <name> -h for its flags; docs/BENCHMARKS.md)")
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "load":
		return load.Main(args[1:], stdout, stderr)
	case "scale":
		return scale.Main(args[1:], stdout, stderr)
	case "budget":
		return budget.Main(args[1:], stdout, stderr)
	case "fair":
		return fair.Main(args[1:], stdout, stderr)
	case "path":
		return critpath.Main(args[1:], stdout, stderr)
	case "apps":
		return appday.Main(args[1:], stdout, stderr)
	case "console":
		return consolepage.Main(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "bench: unknown benchmark %q (want load, scale, budget, fair, path, apps or console)\n", args[0])
	return 2
}
