package scale

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// The tables are Markdown: readable in a terminal and ready for
// docs/BENCHMARKS.md.

func printRequests(w io.Writer, rep *requestsReport) {
	s := rep.Settings
	fmt.Fprintf(w, "\n## API requests per successful deploy\n\n")
	fmt.Fprintf(w, "%d deploys per configuration over %d sources (round-robin), worker concurrency %d, builds plus a uniform [0, %.0f %%) jitter, no rate limits; target ≤ %g requests per deploy on average, 1 upload per source and team.\n",
		s.Deploys, s.Sources, s.Concurrency, s.JitterRatio*100, s.RequestsTarget)
	fmt.Fprintf(w, "\"default\": PipelineConfig.ExpectedBuild left unset (%s), as a freshly started worker has it: the estimate is cold, a few jobs follow their build's event stream and the others poll once the first build was seen; \"told\": set to the build time. \"expects after\": the worker's build estimate once every deploy ended (deployq_build_time_estimate_seconds), which a later deploy's first poll would use.\n\n", s.DefaultExpectedBuild)
	fmt.Fprintln(w, "| build | worker expects | first poll after | succeeded | API requests | requests / deploy | polls / deploy (min–median–max) | streams / deploy (deploys streamed) | uploads (per source) | ≤ target | 1 upload / source | wall time | expects after |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|--:|--:|")
	for _, r := range rep.Results {
		expects := r.ExpectedBuild + " (told)"
		if !r.Told {
			expects = r.ExpectedBuild + " (default)"
		}
		streams := ratio(endpointRequests(r, "deployments.events"), r.Succeeded)
		per := make([]string, len(r.Sources))
		for i, src := range r.Sources {
			per[i] = fmt.Sprint(src.Uploads)
		}
		fmt.Fprintf(w, "| %s + %s | %s | %s | %d / %d | %d | %.2f | %.2f (%d–%d–%d) | %.3f (%d) | %d (%s) | %s | %s | %.1f s | %s |\n",
			r.BuildTime, r.BuildJitter, expects, r.FirstPollAfter, r.Succeeded, r.Deploys, r.APIRequests,
			r.RequestsPerDeploy, ratio(endpointRequests(r, "deployments.get"), r.Succeeded), r.Polls.Min, r.Polls.Median, r.Polls.Max,
			streams, r.Streams.Deployments,
			r.UploadRequests, strings.Join(per, ", "), yesNo(r.RequestsTargetHolds), yesNo(r.UploadsTargetHolds), r.WallSeconds, r.LearnedBuild)
	}

	fmt.Fprintln(w, "\nAPI requests per succeeded deploy, by endpoint:")
	fmt.Fprintln(w)
	header, rule := "| endpoint | route |", "|---|---|"
	for _, r := range rep.Results {
		header += " " + r.Name + " |"
		rule += "--:|"
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, rule)
	for _, ep := range endpointOrder(rep.Results) {
		row := fmt.Sprintf("| %s | %s |", ep, routeOf(ep))
		for _, r := range rep.Results {
			cell := "–"
			for _, e := range r.Endpoints {
				if e.Endpoint == ep {
					cell = fmt.Sprintf("%.2f", e.PerDeploy)
					if e.PerDeploy < 0.1 {
						cell = fmt.Sprintf("%.3f", e.PerDeploy)
					}
					if e.Succeeded != e.Requests {
						cell += fmt.Sprintf(" (%d not 2xx)", e.Requests-e.Succeeded)
					}
				}
			}
			row += " " + cell + " |"
		}
		fmt.Fprintln(w, row)
	}
	if slices.Contains(endpointOrder(rep.Results), "projects.get") {
		fmt.Fprintln(w, "\nprojects.get is the worker's credentials check when it starts (a 404 for a project that does not exist, by design): once per worker, not per deploy, but counted in the total.")
	}
	for _, r := range rep.Results {
		for f, n := range r.Failures {
			fmt.Fprintf(w, "\n%s: %d failed: %s\n", r.Name, n, f)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "\n%s: warning: %s\n", r.Name, p)
		}
	}
	fmt.Fprintf(w, "\nmachine: %s\ncommand: %s\n", rep.Machine, rep.Command)
}

func printScale(w io.Writer, rep *scaleReport) {
	s, r := rep.Settings, rep.Result
	win, pj := r.Window, r.PerJob
	fmt.Fprintf(w, "\n## %d deploys in flight in one worker process\n\n", s.Jobs)
	fmt.Fprintf(w, "Builds %s plus up to %s; the worker expects %s, so no status poll is due in the window. One worker process (concurrency %d), MaxAckPending %d, AckWait %s (a heartbeat every %s per job), GOGC %s, GOMEMLIMIT %s. The NATS server and the simulator run in the parent process. MB are 10^6 bytes.\n\n",
		s.BuildTime, s.BuildJitter, s.ExpectedBuild, s.Jobs, s.MaxAckPending, s.AckWait, s.HeartbeatInterval, s.GOGC, s.GOMEMLIMIT)
	fmt.Fprintln(w, "| measure | value |")
	fmt.Fprintln(w, "|---|--:|")
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "| %s | %s |\n", k, fmt.Sprintf(format, args...)) }
	row(fmt.Sprintf("submit %d requests, %d at a time", s.Jobs, s.SubmitParallel), "%.1f s (%.0f / s)", r.SubmitSeconds, r.SubmitPerSec)
	row("first submit → every deployment created", "%.1f s, %d created", r.RampSeconds, r.Created)
	row("requests delivered again during the ramp", "%d", r.Redelivered)
	row("worker CPU for that ramp", "%.1f s (%.1f ms per job)", r.RampCPUSeconds, r.RampCPUSeconds*1000/float64(s.Jobs))
	row("jobs in flight in the window", "%.0f", lastSample(r).InFlight)
	row("RSS in the window, min / mean / max", "%.0f / %.0f / %.0f MB", win.RSSMinMB, win.RSSMeanMB, win.RSSMaxMB)
	row(fmt.Sprintf("RSS ≤ %g MB in the window", s.RSSTargetMB), "%s", yesNo(r.RSSTargetHolds))
	row("peak RSS (VmHWM, ramp included)", "%.0f MB (≤ %g MB: %s)", win.HWMMB, s.RSSTargetMB, yesNo(r.PeakTargetHolds))
	row("goroutines (max)", "%.0f", win.GoroutinesMax)
	row("OS threads (max)", "%.0f", win.ThreadsMax)
	row("Go heap in use, mean / max", "%.0f / %.0f MB", win.HeapInuseMeanMB, win.HeapInuseMaxMB)
	row("Go heap objects (max)", "%.0f", win.HeapObjectsMax)
	row("goroutine stacks in use (max)", "%.0f MB", win.StackInuseMaxMB)
	row("memory the Go runtime holds from the OS (max)", "%.0f MB", win.GoSysMaxMB)
	row("CPU while waiting", "%.3f cores", win.CPUCores)
	row("NATS messages from the worker", "%.0f / s (%.0f kB/s); heartbeats expected %.0f / s", win.NATSMsgsFromWorkerPerSec, win.NATSBytesFromWorkerPerSec/1e3, win.HeartbeatsExpectedPerSec)
	row("NATS messages to the worker", "%.1f / s (%.1f kB/s)", win.NATSMsgsToWorkerPerSec, win.NATSBytesToWorkerPerSec/1e3)
	row("API requests in the window", "%d", win.APIRequests)
	row("progress events stored / expected (one per step before wait_ready)", "%d / %d", r.EventsStored, r.EventsExpected)
	row("per job: RSS / heap in use / stack", "%.1f / %.1f / %.1f kB", pj.RSSBytes/1e3, pj.HeapInuseBytes/1e3, pj.StackInuseBytes/1e3)
	row("per job: goroutines / heap objects", "%.2f / %.0f", pj.Goroutines, pj.HeapObjects)
	if a := r.AfterFree; a != nil {
		row("diagnostic after the window, debug.FreeOSMemory ×3: RSS / heap in use / stacks", "%.0f / %.0f / %.0f MB",
			mb(a.RSS), a.HeapInuse/1e6, a.StackInuse/1e6)
	}
	row("idle worker before submit: RSS / heap / goroutines", "%.0f MB / %.0f MB / %.0f", mb(r.Idle.RSS), r.Idle.HeapInuse/1e6, r.Idle.Goroutines)
	row("HTTP connections to the API opened / open at once (max)", "%d / %d", r.HTTPConnsOpened, r.HTTPConnsPeak)
	row("stop: SIGTERM → exit", "%.1f s, %s", r.StopSeconds, r.Exit)
	row("parent process RSS (NATS server + simulator)", "%.0f MB", r.ParentRSSMB)
	if r.MemProfile != "" {
		row("heap profile (end of window)", "%s", r.MemProfile)
	}

	fmt.Fprintln(w, "\nSamples (t from the start of the window):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| t | RSS MB | VmHWM MB | goroutines | heap in use MB | stacks MB | CPU s (total) | in flight | NATS msgs from worker (total) |")
	fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, x := range r.Samples {
		fmt.Fprintf(w, "| %.0f s | %.1f | %.1f | %.0f | %.1f | %.1f | %.2f | %.0f | %d |\n",
			x.AtSeconds, mb(x.RSS), mb(x.HWM), x.Goroutines, x.HeapInuse/1e6, x.StackInuse/1e6, x.CPUSeconds, x.InFlight, x.NATSInMsgs)
	}
	if len(r.LogLevels) > 0 {
		fmt.Fprintf(w, "\nworker log lines by level: %v\n", r.LogLevels)
	}
	for _, msg := range slices.Sorted(maps.Keys(r.LogWarnings)) {
		fmt.Fprintf(w, "worker warning ×%d: %s\n", r.LogWarnings[msg], msg)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "\nwarning: %s\n", p)
	}
	fmt.Fprintf(w, "\nmachine: %s\ncommand: %s\n", rep.Machine, rep.Command)
}

func lastSample(r scaleResult) sample {
	if len(r.Samples) == 0 {
		return sample{}
	}
	return r.Samples[len(r.Samples)-1]
}

func endpointRequests(r requestsResult, ep string) int {
	for _, e := range r.Endpoints {
		if e.Endpoint == ep {
			return e.Requests
		}
	}
	return 0
}

// endpointOrder lists the endpoints any configuration called, in the
// order of the first configuration that called each (the pipeline's order).
func endpointOrder(results []requestsResult) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range results {
		for _, e := range r.Endpoints {
			if !seen[e.Endpoint] {
				seen[e.Endpoint] = true
				out = append(out, e.Endpoint)
			}
		}
	}
	return out
}

// routeOf names an endpoint's HTTP route, as the simulator serves it.
func routeOf(ep string) string {
	switch ep {
	case "projects.create":
		return "POST /v11/projects"
	case "projects.get":
		return "GET /v9/projects/{id}"
	case "projects.delete":
		return "DELETE /v9/projects/{id}"
	case "projects.transfer_request":
		return "POST /projects/{id}/transfer-request"
	case "integrations.authorize":
		return "POST /v1/integrations/billing/authorization"
	case "stores.create":
		return "POST /v1/storage/stores/integration"
	case "stores.delete":
		return "DELETE /v1/storage/stores/integration/{id}"
	case "integrations.resources.list":
		return "GET /v1/installations/{cfg}/resources"
	case "integrations.resources.connect":
		return "POST …/resources/{store}/connections"
	case "files.upload":
		return "POST /v2/files"
	case "deployments.create":
		return "POST /v13/deployments"
	case "deployments.get":
		return "GET /v13/deployments/{id}"
	case "deployments.events":
		return "GET /v3/deployments/{id}/events?follow=1"
	case "deployments.list":
		return "GET /v6/deployments"
	}
	return ""
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}
