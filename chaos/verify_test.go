package chaos

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go/jetstream"
)

// tally is what the events stream holds for one request.
type tally struct {
	terminal   []jobs.Event
	steps      int
	deliveries int // the highest delivery number any of its events carries
}

// verify checks the guarantees after the run and returns the report.
func verify(t *testing.T, sc scenario, js jetstream.JetStream, client *jobs.Client, sim *vercelsim.Server, f *fleet, reqs []request, run *runStats, users *claims) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 2*time.Minute)
	defer cancel()
	rep := report{title: "deployq chaos test (" + sc.name + ")"}
	toFail, toReject := 0, 0
	byID := make(map[string]*request, len(reqs))
	for i := range reqs {
		byID[reqs[i].ID] = &reqs[i]
		switch {
		case reqs[i].raw != nil:
			toReject++
		case reqs[i].fail:
			toFail++
		}
	}
	tenantsOf := map[string]bool{}
	batch := 0
	for _, r := range reqs {
		tenantsOf[r.Tenant] = true
		if r.Priority.Batch() {
			batch++
		}
	}
	rep.line("requests", "%d over %d tenants: %d made to fail (a build error), %d invalid, %d batch", len(reqs), len(tenantsOf), toFail, toReject, batch)

	// Events: exactly one terminal event per request, of the right kind.
	evs := jobstest.StoredEvents(t, js, jobs.AllEvents)
	tallies := map[string]*tally{}
	for _, ev := range evs {
		if ev.Type == jobs.TypeClaimed || ev.Type == jobs.TypeExpired {
			continue // an app's end, not a request's: verifyApps
		}
		id := ev.Data.RequestID
		if byID[id] == nil {
			t.Errorf("event %s (%s) for a request never submitted: %s", ev.ID, ev.Short(), id)
			continue
		}
		ta := tallies[id]
		if ta == nil {
			ta = &tally{}
			tallies[id] = ta
		}
		if ev.Terminal() {
			ta.terminal = append(ta.terminal, ev)
		} else if ev.Type == jobs.TypeStepCompleted {
			ta.steps++
		}
		ta.deliveries = max(ta.deliveries, ev.Data.Attempt)
	}
	perRequest := map[int]int{} // terminal events → requests
	var succeeded, failed, cleaned, rejected, overQuota, appExpired, wrong, redelivered, maxDeliveries int
	var missing []request
	for _, r := range reqs {
		ta := tallies[r.ID]
		if ta == nil {
			ta = &tally{}
		}
		perRequest[len(ta.terminal)]++
		if ta.deliveries > 1 {
			redelivered++
		}
		maxDeliveries = max(maxDeliveries, ta.deliveries)
		switch len(ta.terminal) {
		case 0:
			missing = append(missing, r)
			continue
		case 1:
		default:
			var kinds []string
			for _, ev := range ta.terminal {
				kinds = append(kinds, ev.ID+" "+ev.Short())
			}
			t.Errorf("%s has %d terminal events: %s", r.ID, len(ta.terminal), strings.Join(kinds, ", "))
		}
		ev := ta.terminal[0]
		switch {
		case r.raw != nil:
			if ev.Type == jobs.TypeRejected && ev.Data.Error != nil && ev.Data.Error.Code == "invalid_request" {
				rejected++
			} else {
				wrong++
				t.Errorf("%s ended %s, want rejected with invalid_request", r.ID, describe(ev))
			}
		case r.OverQuota.Reject() && ev.Type == jobs.TypeRejected && ev.Data.Error != nil && ev.Data.Error.Code == jobs.CodeQuotaExceeded:
			overQuota++
		case r.App != "" && ev.Type == jobs.TypeRejected && ev.Data.Error != nil && ev.Data.Error.Code == jobs.CodeAppExpired:
			appExpired++
		case ev.Type == jobs.TypeSucceeded && !r.fail:
			succeeded++
			if ev.Data.URL == "" || ev.Data.ClaimURL == "" || ev.Data.DeploymentID == "" {
				t.Errorf("%s succeeded without a URL, claim URL or deployment: %+v", r.ID, ev.Data)
			}
		case ev.Type == jobs.TypeFailed && r.fail && ev.Data.Error != nil && ev.Data.Error.Code == "BUILD_FAILED":
			failed++
			if slices.Contains(ev.Data.Cleaned, "project") && slices.Contains(ev.Data.Cleaned, "database") {
				cleaned++
			}
		default:
			wrong++
			t.Errorf("%s ended %s, want %s: %s", r.ID, describe(ev), r.outcome(), f.grepSummary(r.ID))
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d requests have no terminal event after %s:\n%s",
			len(missing), len(reqs), run.wall.Round(time.Second), describeMissing(ctx, js, f, missing))
	}
	rep.line("outcomes", "%d succeeded, %d failed with BUILD_FAILED (%d of them with project and database deleted), %d rejected, %d rejected over quota, %d versions rejected as their app had expired, %d ended otherwise, %d without an outcome",
		succeeded, failed, cleaned, rejected, overQuota, appExpired, wrong, len(missing))
	rep.line("quota", "%s", checkQuota(ctx, t, client, reqs, tallies))
	rep.line("apps", "%s; all settled %s after the first submit", verifyApps(t, js, sim, reqs, evs, users), run.appsSettled.Round(time.Second))
	// Progress events are best effort (the terminal event is the
	// contract): count those missing rather than fail on them.
	wantSteps, gotSteps := 0, 0
	for _, r := range reqs {
		ta := tallies[r.ID]
		if ta == nil || len(ta.terminal) == 0 {
			continue
		}
		switch ta.terminal[0].Type {
		case jobs.TypeSucceeded:
			wantSteps += len(jobs.Steps())
			if ta.terminal[0].Data.AppVersion > 1 {
				// A later version starts at the upload.
				wantSteps -= slices.Index(jobs.Steps(), jobs.StepUploadSource)
			}
		case jobs.TypeFailed:
			wantSteps += slices.Index(jobs.Steps(), jobs.StepWaitReady) // the steps before the build's end
		}
		gotSteps += ta.steps
	}
	rep.line("terminal", "events per request: %s; %d events in all, %d of them progress events (%d expected from the outcomes)",
		histogram(perRequest, len(reqs)), len(evs), gotSteps, wantSteps)
	rep.line("deliveries", "%d requests delivered more than once, at most %d deliveries (as their events show)", redelivered, maxDeliveries)

	// The simulator: at most one project, database and READY deployment
	// per request, and exactly one READY deployment per success.
	st := sim.Stats()
	var maxProjects, maxStores, maxReady, dupDeployments, readyOK, ownSuccesses int
	for _, r := range reqs {
		if r.App != "" {
			continue // an app's versions share a project: verifyApps
		}
		pn, sn := jobs.ProjectName(&r.Request), jobs.StoreName(&r.Request)
		projects, stores := st.ProjectsCreated[pn], st.StoresCreated[sn]
		ready, created := st.DeploymentsReady[pn], st.DeploymentsCreated[pn]
		maxProjects, maxStores, maxReady = max(maxProjects, projects), max(maxStores, stores), max(maxReady, ready)
		if created > 1 {
			dupDeployments++
		}
		if projects > 1 || stores > 1 || ready > 1 {
			t.Errorf("%s: the simulator created %d projects named %s, %d databases named %s, %d deployments (%d READY)",
				r.ID, projects, pn, stores, sn, created, ready)
		}
		if ta := tallies[r.ID]; ta != nil && len(ta.terminal) > 0 && ta.terminal[0].Type == jobs.TypeSucceeded {
			ownSuccesses++
			if ready == 1 {
				readyOK++
			} else {
				t.Errorf("%s succeeded but its project %s has %d READY deployments", r.ID, pn, ready)
			}
		}
	}
	rep.line("simulator", "per request of its own app at most %d project, %d database, %d READY deployment; %d of its %d successes with exactly one READY deployment; %d requests with a second deployment created",
		maxProjects, maxStores, maxReady, readyOK, ownSuccesses, dupDeployments)

	// The DLQ holds exactly the requests made to fail, once each.
	dead, err := client.DeadLetters(ctx, "")
	if err != nil {
		t.Fatalf("read the DLQ: %v", err)
	}
	dlq := map[string]int{}
	strays := 0
	for _, d := range dead {
		if d.ID == "" && d.Reason == jobs.DLQReasonRejected {
			// The garbled copy TestChaos publishes, or a retried publish
			// stored after its request ended: the message's dead letter,
			// not the request's (pkg/jobs/reject.go).
			strays++
			continue
		}
		dlq[d.ID]++
		r := byID[d.ID]
		switch {
		case r == nil:
			t.Errorf("dead letter for a request never submitted: %s (%s)", d.ID, d.Reason)
		case r.raw != nil:
			if d.Reason != jobs.DLQReasonRejected || d.Error == nil || d.Error.Code != "invalid_request" {
				t.Errorf("dead letter of %s: reason %s, error %+v; want rejected with invalid_request", d.ID, d.Reason, d.Error)
			}
		case !r.fail:
			t.Errorf("dead letter for %s, which should have succeeded: reason %s, error %+v", d.ID, d.Reason, d.Error)
		case d.Reason != jobs.DLQReasonFailed || d.Error == nil || d.Error.Code != "BUILD_FAILED":
			t.Errorf("dead letter of %s: reason %s, error %+v; want failed with BUILD_FAILED", d.ID, d.Reason, d.Error)
		}
	}
	for _, r := range reqs {
		if (r.fail || r.raw != nil) && dlq[r.ID] != 1 {
			t.Errorf("%s must end %s and has %d dead letters, want 1", r.ID, r.outcome(), dlq[r.ID])
		}
	}
	if strays < 1 {
		t.Errorf("the garbled copy of a live request left no stray dead letter")
	}
	rep.line("dlq", "%d entries for %d requests (%d stray messages); %d made to fail and %d invalid", len(dead), len(dlq), strays, toFail, toReject)

	// Nothing is left in the work queue.
	left, pending := queueLeft(ctx, t, js)
	if left != 0 || pending != 0 {
		t.Errorf("%d requests left in %s, %d awaiting ack, after every request ended", left, jobs.StreamRequests, pending)
	}
	rep.line("queue", "%d requests left in %s, %d awaiting ack; drained %s after the last terminal event", left, jobs.StreamRequests, pending, drainedText(run.drained))

	// What the chaos did; a run that did not exercise something checked
	// nothing about it.
	faults, faultKinds := countFaults(st)
	limited := 0
	for _, n := range st.RateLimited {
		limited += n
	}
	rep.line("chaos", "%d SIGKILLs (one every %s); %d NATS node restart: %s",
		run.kills, sc.killEvery, run.nodeRestarts, run.nodeDown)
	rep.line("workers", "%d processes; %d exited by themselves before taking work (restarted), %d after",
		len(f.incarnations()), len(run.startFailures), len(run.crashes))
	const (
		takenOver = "another worker took this job over; stopping without acting further"
		retried   = "step will be retried"
		handed    = "job interrupted; handing it back"
		disconn   = "NATS disconnected"
	)
	logs := f.logCounts(takenOver, retried, handed, disconn)
	rep.line("logs", "%d steps retried, %d jobs dropped as taken over by another worker, %d handed back after an error, %d NATS disconnects",
		logs[retried], logs[takenOver], logs[handed], logs[disconn])
	rep.line("api", "%d calls; %d injected faults (%s); %d answered 429 (%s)",
		sum(st.Requests), faults, faultKinds, limited, byEndpoint(st.RateLimited))
	if run.kills == 0 {
		t.Error("the run ended before any worker was killed")
	}
	if run.nodeRestarts != 1 {
		t.Errorf("%d NATS node restarts, want 1", run.nodeRestarts)
	}
	if faults == 0 {
		t.Error("the simulator injected no fault")
	}
	if limited == 0 {
		t.Error("the simulator answered no 429: the rate-limit path went unexercised")
	}
	rep.line("time", "submitted in %s; all ended %s after the first submit; %s until the workers stopped",
		run.submitted.Round(time.Millisecond), orDash(run.allEnded), run.wall.Round(time.Millisecond))
	rep.line("machine", "%s/%s, %d CPUs (GOMAXPROCS %d), %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	return rep.String()
}

func describe(ev jobs.Event) string {
	s := ev.Short()
	if ev.Data.Error != nil {
		s += fmt.Sprintf(" at %s with %s (%s)", ev.Data.Error.Step, ev.Data.Error.Code, clip(ev.Data.Error.Message, 200))
	}
	return s
}

func (f *fleet) grepSummary(id string) string {
	lines := f.grep(`"`+id+`"`, 6, 300)
	if len(lines) == 0 {
		return "no log line names it"
	}
	return "its last log lines:\n      " + strings.Join(lines, "\n      ")
}

// histogram reads like "exactly 1 for 60 of 60" or lists every count.
func histogram(h map[int]int, total int) string {
	if len(h) == 1 && h[1] == total {
		return fmt.Sprintf("exactly 1 for %d of %d", total, total)
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(h)) {
		parts = append(parts, fmt.Sprintf("%d for %d", k, h[k]))
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(" (of %d)", total)
}

func queueLeft(ctx context.Context, t *testing.T, js jetstream.JetStream) (left uint64, pending int) {
	t.Helper()
	s, err := js.Stream(ctx, jobs.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Delivered and unsettled, over every consumer: each tenant's lane
	// and the shared one.
	infos := s.ListConsumers(ctx)
	for ci := range infos.Info() {
		pending += ci.NumAckPending
	}
	if err := infos.Err(); err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs, pending
}

func countFaults(st vercelsim.Stats) (int, string) {
	var before, after, hang int
	for _, fc := range st.Faults {
		before += fc.ErrorBefore
		after += fc.ErrorAfter
		hang += fc.Hang + fc.HangAfter
	}
	return before + after + hang, fmt.Sprintf("5xx before the effect %d, after it %d, hangs %d", before, after, hang)
}

func sum[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func byEndpoint[K ~string](m map[K]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func orDash(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return d.Round(time.Millisecond).String()
}

// report is the printed summary, one labelled line per fact.
type report struct {
	title string
	b     strings.Builder
}

func (r *report) line(label, format string, args ...any) {
	if r.b.Len() == 0 {
		r.b.WriteString(r.title + "\n")
	}
	fmt.Fprintf(&r.b, "  %-11s %s\n", label+":", fmt.Sprintf(format, args...))
}

func (r *report) String() string { return r.b.String() }

func drainedText(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(100 * time.Millisecond).String()
}

// checkQuota checks that the quota's tenant never started more than
// quotaDeploys deploys in any quotaWindow, kills and a lost node
// notwithstanding, and describes its requests' outcomes.
func checkQuota(ctx context.Context, t *testing.T, client *jobs.Client, reqs []request, tallies map[string]*tally) string {
	t.Helper()
	var starts []time.Time
	rejected := 0
	for _, r := range reqs {
		if r.Tenant != quotaTenant {
			continue
		}
		ta := tallies[r.ID]
		if ta == nil || len(ta.terminal) == 0 {
			continue
		}
		if ta.terminal[0].Type == jobs.TypeRejected {
			rejected++
			continue
		}
		st, err := client.Status(ctx, r.Tenant, r.ID)
		if err != nil || st.State == nil {
			t.Errorf("%s: no job state: %v", r.ID, err)
			continue
		}
		starts = append(starts, st.State.StartedAt)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	// A deploy is admitted a moment before its job's first write records
	// StartedAt; a second covers that moment on a loaded machine.
	const slack = time.Second
	closest := time.Duration(0)
	for i := quotaDeploys; i < len(starts); i++ {
		gap := starts[i].Sub(starts[i-quotaDeploys])
		if closest == 0 || gap < closest {
			closest = gap
		}
		if gap < quotaWindow-slack {
			t.Errorf("the quota's tenant started deploys %d and %d %s apart: %d deploys in less than its window (%s)",
				i-quotaDeploys+1, i+1, gap.Round(time.Millisecond), quotaDeploys+1, quota)
		}
	}
	return fmt.Sprintf("%s: %d deploys started (the closest %d+1 %s apart), %d rejected over quota",
		quota, len(starts), quotaDeploys, closest.Round(time.Millisecond), rejected)
}
