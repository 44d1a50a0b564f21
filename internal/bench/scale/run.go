package scale

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/deployq/deployq/internal/bench"
)

// run measures the parts the mode asks for, one after the other (the
// scale part reads the worker's CPU time, which the requests part's six
// servers would disturb), prints them and writes the results file. It
// returns the exit code.
func run(ctx context.Context, o options, stdout, stderr io.Writer) int {
	tmp, err := os.MkdirTemp("", "scalebench-")
	if err != nil {
		fmt.Fprintf(stderr, "scalebench: %v\n", err)
		return 1
	}
	seed := bench.Seed(o.seed)
	began := time.Now()
	var rep report
	failed := false
	if o.mode != modeScale {
		dir := filepath.Join(tmp, "requests")
		r, err := runRequests(ctx, o, seed, dir, stderr)
		if err != nil {
			failed = true
			fmt.Fprintf(stderr, "scalebench: requests: %v (logs in %s)\n", err, dir)
		}
		if r != nil && len(r.Results) > 0 {
			rep.Requests = r
			printRequests(stdout, r)
		}
	}
	if o.mode != modeRequests && ctx.Err() == nil {
		dir := filepath.Join(tmp, "scale")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintf(stderr, "scalebench: %v\n", err)
			return 1
		}
		s, err := runScale(ctx, o, seed, dir, stderr)
		if err != nil {
			failed = true
			fmt.Fprintf(stderr, "scalebench: scale: %v (worker log in %s)\n", err, filepath.Join(dir, "worker.log"))
		}
		if s != nil {
			rep.Scale = s
			printScale(stdout, s)
		}
	}
	fmt.Fprintf(stdout, "\nwall time of the whole run: %.1f s\n", time.Since(began).Seconds())

	if o.outDir != "" && (rep.Requests != nil || rep.Scale != nil) {
		path, err := writeReport(o.outDir, rep)
		if err != nil {
			failed = true
			fmt.Fprintf(stderr, "scalebench: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "scalebench: results written to %s\n", path)
		}
	}
	return bench.Finish(stderr, "scalebench", tmp, failed, o.keep)
}
