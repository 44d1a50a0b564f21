package budget

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// shortSpanWindows is the active span, in windows, below which the
// utilization is flagged as not telling much.
const shortSpanWindows = 5

// printTables writes the results as Markdown tables: readable in a
// terminal and ready for docs/BENCHMARKS.md.
func printTables(w io.Writer, rep report) {
	fmt.Fprintf(w, "\n%d deploys per strategy, %d worker processes × concurrency %d, builds %s (+ up to %s), limits %s; bottleneck %s%s\n\n",
		rep.Settings.Requests, rep.Settings.Processes, rep.Settings.Concurrency,
		rep.Settings.BuildTime, rep.Settings.BuildJitter, limitsText(rep.Settings.Limits), rep.Settings.Bottleneck,
		headersNote(rep.Settings))
	fmt.Fprintln(w, "| strategy | succeeded | failed (for rate limits) | 429s / API requests | bottleneck utilization, active span | same, whole run | wall time | submit→end p50 / p99, succeeded | same, all | API requests / deploy |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rep.Results {
		failed := fmt.Sprintf("%d (%d)", r.Failed, r.FailedRateLimit)
		if r.Missing > 0 {
			failed += fmt.Sprintf(", %d unfinished", r.Missing)
		}
		perDeploy := "n/a"
		if r.Succeeded > 0 {
			perDeploy = fmt.Sprintf("%.2f", r.RequestsPerDeploy)
		}
		fmt.Fprintf(w, "| %s | %d / %d | %s | %s (%d / %d) | %s | %s | %s | %s / %s | %s / %s | %s |\n",
			r.Strategy, r.Succeeded, r.Submitted, failed,
			pct(r.RateLimitedShare, 2), r.RateLimited, r.Requests,
			pct(r.Bottleneck.UtilizationActive, 1), pct(r.Bottleneck.UtilizationRun, 1),
			secs(r.WallSeconds),
			secs(r.LatencySucceeded.P50), secs(r.LatencySucceeded.P99),
			secs(r.LatencyAll.P50), secs(r.LatencyAll.P99), perDeploy)
	}

	fmt.Fprintln(w, "\nAPI requests per succeeded deploy, by endpoint (429s in brackets):")
	fmt.Fprintln(w)
	header := "| endpoint | limit |"
	rule := "|---|---|"
	for _, r := range rep.Results {
		header += " " + r.Strategy + " |"
		rule += "--:|"
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, rule)
	for _, ep := range vercel.Endpoints() {
		row := fmt.Sprintf("| %s | %s |", ep, cmp.Or(rep.Settings.Limits[string(ep)], "none"))
		any := false
		for _, r := range rep.Results {
			cell := "–"
			for _, e := range r.Endpoints {
				if e.Endpoint == string(ep) {
					any = true
					cell = fmt.Sprintf("%d", e.Requests)
					if r.Succeeded > 0 {
						cell = perDeployText(e.PerDeploy)
					}
					if e.RateLimited > 0 {
						cell += fmt.Sprintf(" (%d)", e.RateLimited)
					}
				}
			}
			row += " " + cell + " |"
		}
		if any {
			fmt.Fprintln(w, row)
		}
	}

	for _, r := range rep.Results {
		if len(r.Failures) > 0 {
			var parts []string
			for _, why := range slices.Sorted(maps.Keys(r.Failures)) {
				parts = append(parts, fmt.Sprintf("%s ×%d", why, r.Failures[why]))
			}
			fmt.Fprintf(w, "\n%s failures: %s\n", r.Strategy, strings.Join(parts, ", "))
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "\n%s: warning: %s\n", r.Strategy, p)
		}
		if b := r.Bottleneck; len(b.PerWindow) > 0 {
			var parts []string
			for _, u := range b.PerWindow {
				parts = append(parts, pct(u, 1))
			}
			fmt.Fprintf(w, "\n%s: %s per whole %s window of its binding limit (%d calls), back to back from the first: %s\n",
				r.Strategy, b.Endpoint, time.Duration(b.WindowSeconds*float64(time.Second)), b.Limit, strings.Join(parts, ", "))
		}
		// Fixed windows let a client fit two windows' worth of calls into
		// a span just over one window, so short spans say little.
		if b := r.Bottleneck; b.ActiveSpan < shortSpanWindows*b.WindowSeconds {
			fmt.Fprintf(w, "\n%s: note: the active span (%.1f s) is shorter than %d windows of %s; its utilization says little\n",
				r.Strategy, b.ActiveSpan, shortSpanWindows, b.Endpoint)
		}
	}
	m := rep.Machine
	fmt.Fprintf(w, "\nmachine: %d CPUs (nproc), %s, %s %s/%s, %s\n", m.NProc, m.CPUModel, m.GoVersion, m.OS, m.Arch, m.Date)
}

// limitsText lists limits with the common one first: "all 50/10s,
// deployments.create 20/10s".
func limitsText(limits map[string]string) string {
	counts := map[string]int{}
	for _, l := range limits {
		counts[l]++
	}
	var common string
	for l, n := range counts {
		if n > counts[common] || (n == counts[common] && l < common) {
			common = l
		}
	}
	parts := []string{}
	if counts[common] > 1 {
		parts = append(parts, "every endpoint "+common)
	}
	for _, ep := range slices.Sorted(maps.Keys(limits)) {
		if limits[ep] != common || counts[common] == 1 {
			parts = append(parts, ep+" "+limits[ep])
		}
	}
	return strings.Join(parts, ", ")
}

func pct(f float64, decimals int) string {
	return fmt.Sprintf("%.*f %%", decimals, f*100)
}

func secs(s float64) string {
	return fmt.Sprintf("%.1f s", s)
}

// headersNote marks runs whose simulator sent no X-RateLimit-* headers.
func headersNote(s settings) string {
	if s.HeadersStripped {
		return "; X-RateLimit-* headers stripped"
	}
	return ""
}

// perDeployText keeps two decimals, and three for the rare calls (one
// upload per team is 0.003 per deploy at 300 deploys) so they do not read
// as none.
func perDeployText(v float64) string {
	if v > 0 && v < 0.1 {
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
