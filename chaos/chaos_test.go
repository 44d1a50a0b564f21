package chaos

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// scenario is one shape of the chaos run.
type scenario struct {
	name string
	// requests are submitted at the start; every failEvery-th deploys a
	// build that fails.
	requests, failEvery int
	// workers processes run concurrency jobs each; ackWait is the lease a
	// killed worker's requests wait out before they are delivered again.
	workers, concurrency int
	ackWait              time.Duration
	// killEvery is the schedule of SIGKILLs, one random worker each time.
	killEvery time.Duration
	// nodeDownAt is when, after the chaos starts, the NATS node leading
	// the requests stream is stopped; nodeDownFor is how long it stays down.
	nodeDownAt, nodeDownFor time.Duration
	// deadline bounds the run from the first submit to the last outcome.
	deadline time.Duration
}

// Environment variables choosing the variant (see the package doc).
const (
	envVariant  = "DEPLOYQ_CHAOS"
	envRequests = "DEPLOYQ_CHAOS_REQUESTS"
)

func chosenScenario(t *testing.T) scenario {
	t.Helper()
	sc := scenario{
		name: "short", requests: 60, failEvery: 20,
		workers: 3, concurrency: 8, ackWait: 3 * time.Second,
		killEvery:  4 * time.Second,
		nodeDownAt: 12 * time.Second, nodeDownFor: 6 * time.Second,
		deadline: 4 * time.Minute,
	}
	switch v := os.Getenv(envVariant); v {
	case "", "short":
	case "long":
		sc.name, sc.requests, sc.deadline = "long", 300, 12*time.Minute
		sc.nodeDownAt = 45 * time.Second
	default:
		t.Fatalf("%s=%q: want short or long", envVariant, v)
	}
	if v := os.Getenv(envRequests); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5000 {
			t.Fatalf("%s=%q: want a number of requests from 1 to 5000", envRequests, v)
		}
		// A bigger batch gets proportionally more time.
		sc.deadline = max(sc.deadline, time.Duration(n)*sc.deadline/time.Duration(sc.requests))
		sc.requests = n
	}
	if d, ok := t.Deadline(); ok {
		// Leave time for the checks and the report before go test's
		// -timeout panics, which would skip the cleanups.
		if left := time.Until(d) - time.Minute; left < sc.deadline {
			sc.deadline = left
		}
	}
	return sc
}

// request is one deploy request of the run and what it must end as.
type request struct {
	jobs.Request
	tarball []byte
	// fail marks a build that fails: the request must end failed with
	// BUILD_FAILED and have one dead letter.
	fail bool
	// raw, when set, is published as is on subject instead of submitted:
	// an invalid request that must be rejected once.
	raw     []byte
	subject string
	// claim marks a version of an app its user claims (apps_test.go).
	claim bool
}

// outcome is what the request must end as.
func (r *request) outcome() string {
	switch {
	case r.raw != nil:
		return "rejected"
	case r.fail:
		return "failed with BUILD_FAILED"
	case r.OverQuota.Reject():
		return "succeeded, or rejected with quota_exceeded"
	case r.App != "":
		return "succeeded, or rejected with app_expired (its app expired between versions)"
	}
	return "succeeded"
}

// TestChaos runs a batch of deploys through a fleet being killed, on a
// NATS cluster losing a node, against an API that fails and throttles; then
// checks docs/RELIABILITY.md's guarantees and prints the counts.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: skipped with -short")
	}
	t.Parallel()
	sc := chosenScenario(t)
	bin := buildWorker(t)

	cluster, err := natsembed.StartCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Shutdown)
	nc, err := cluster.Connect(nats.Name("deployq-chaos"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// The workers' settings exactly: workers of one fleet must agree.
	setUp(ctx, t, js, jobs.SetupConfig{Replicas: 3, AckWait: sc.ackWait})
	client, err := jobs.NewClient(ctx, js, jobs.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}

	sim, simURL := startSim(t, simConfig())
	f := newFleet(t, bin, workerEnv(cluster.ClientURLs(), simURL, sc), sc.workers)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(f.logReport(12))
		}
	})
	for slot := range sc.workers {
		if _, err := f.start(slot); err != nil {
			t.Fatal(err)
		}
	}

	// Watching starts before submitting, and from the start of the stream.
	terminal := make(chan jobs.Event)
	watchCtx, stopWatch := context.WithCancel(t.Context())
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		watchTerminal(watchCtx, t, client, terminal)
	}()
	defer func() { stopWatch(); <-watchDone }()

	reqs := makeRequests(t, sc)
	began := time.Now()
	submitAll(t, client, js, reqs)
	submitted := time.Since(began)
	// A garbled copy on the subject of a request that is queued or
	// running, as a confused or hostile producer would send: that request
	// must still end once, as itself, and the copy be dead-lettered as a
	// stray (verify checks both).
	for _, r := range reqs {
		if r.raw == nil && !r.fail {
			pctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			_, err := js.Publish(pctx, jobs.RequestSubject(r.Tenant, r.ID), []byte(`{"version":1,"garbled":`))
			cancel()
			if err != nil {
				t.Fatalf("publish a garbled copy of %s: %v", r.ID, err)
			}
			break
		}
	}

	appCtx, stopClaims := context.WithCancel(t.Context())
	defer stopClaims()
	users := claimApps(appCtx, t, client, simURL, reqs)
	settled := func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return appsSettled(ctx, js, users)
	}
	run := runChaos(t, sc, cluster, js, f, terminal, reqs, settled)
	stopClaims()
	run.submitted = submitted
	stopWatch()

	// Everything has ended (or the deadline passed): a clean shutdown of
	// the survivors must still work, once they run (a SIGTERM before the
	// worker installed its handler would just kill it).
	for slot := range sc.workers {
		if p := f.current(slot); !waitStarted(p, 30*time.Second) {
			t.Errorf("%s did not start within 30 s", p)
		}
	}
	for _, p := range f.stop(10 * time.Second) {
		t.Errorf("%s did not exit 0 within 10 s of SIGTERM: %s", p, p.cmd.ProcessState)
	}
	run.wall = time.Since(began)

	rep := verify(t, sc, js, client, sim, f, reqs, run, users)
	t.Log("\n" + rep)
	fmt.Print(rep)
}

// setUp creates the streams and buckets. A cluster that has just formed
// may still refuse to place R3 streams ("no suitable peers for placement")
// for a moment, so a refusal is retried, as a producer would.
func setUp(ctx context.Context, t *testing.T, js jetstream.JetStream, cfg jobs.SetupConfig) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		_, err := jobs.Setup(ctx, js, cfg)
		if err == nil {
			return
		}
		if attempt == 20 || ctx.Err() != nil {
			t.Fatalf("set up the streams (%d attempts): %v", attempt, err)
		}
		t.Logf("set up the streams, attempt %d: %v; again in 250 ms", attempt, err)
		wait(ctx, 250*time.Millisecond)
	}
}

// workerEnv is the environment of every worker process: nothing from the
// test's own environment but PATH, HOME and TMPDIR, so a developer's
// ACCESS_TOKEN or NATS_URL cannot leak in.
func workerEnv(natsURLs []string, simURL string, sc scenario) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"TMPDIR=" + os.TempDir(),
		"NATS_URL=" + strings.Join(natsURLs, ","),
		"STREAM_REPLICAS=3",
		"VERCEL_API_URL=" + simURL,
		"ACCESS_TOKEN=" + simToken,
		"INTEGRATION_CONFIG_ID=" + integrationID,
		"CONCURRENCY=" + strconv.Itoa(sc.concurrency),
		"ACK_WAIT=" + sc.ackWait.String(),
		"SHUTDOWN_GRACE=1s",
		"HTTP_ADDR=off",
		"BUDGET=shared",
		"BUDGET_LIMITS=" + budgetLimits(),
		"TENANT_QUOTAS=" + quotaTenant + "=" + quota,
		appEnv()[0], appEnv()[1], appEnv()[2], appEnv()[3],
		"LOG_FORMAT=json",
		"LOG_LEVEL=debug",
	}
}

var tenants = []string{"acme", "globex", "initech"}

// quotaTenant has a quota (TENANT_QUOTAS) the run's requests overrun:
// quotaDeploys per quotaWindow. Its requests wait for it, held across the
// kills, but every third asks to be rejected instead (overQuota: reject).
const (
	quotaTenant  = "umbrella"
	quotaDeploys = 4
	quotaWindow  = 10 * time.Second
)

var quota = fmt.Sprintf("%d/%s", quotaDeploys, quotaWindow)

// makeRequests builds the batch: distinct ids over a few tenants, each
// tenant deploying its own app, every failEvery-th request (5 %) a build
// that fails, and every seventh a batch request.
func makeRequests(t *testing.T, sc scenario) []request {
	t.Helper()
	apps := map[string][]byte{}
	for _, tenant := range tenants {
		apps[tenant] = jobstest.Tarball(t, map[string]string{
			"package.json": `{"name":"` + tenant + `-app","scripts":{"build":"next build"}}`,
			"app/page.tsx": `export default function Page() { return <h1>` + tenant + `</h1> }`,
		})
	}
	broken := jobstest.FailingTarball(t, "Error: chaos test build fails on purpose")
	reqs := make([]request, sc.requests)
	for i := range reqs {
		tenant := tenants[i%len(tenants)]
		r := request{Request: jobs.Request{
			ID: fmt.Sprintf("chaos-%04d", i), Tenant: tenant, Name: "app", Framework: "nextjs",
			ReturnURL: "https://platform.example/apps/" + strconv.Itoa(i),
		}, tarball: apps[tenant]}
		if i%sc.failEvery == sc.failEvery/2 {
			r.fail, r.Name, r.tarball = true, "broken", broken
		}
		if i%7 == 3 {
			// Batch requests wait in their tenant's second consumer.
			r.Priority = jobs.PriorityBatch
		}
		reqs[i] = r
	}
	// The quota's tenant: one request in ten of the run, none made to
	// fail (a failure would be dead-lettered like any other).
	umbrella := jobstest.Tarball(t, map[string]string{"package.json": `{"name":"umbrella-app"}`, "index.html": "umbrella"})
	for i := range max(sc.requests/10, 3*quotaDeploys/2) {
		r := request{Request: jobs.Request{
			ID: fmt.Sprintf("chaos-quota-%03d", i), Tenant: quotaTenant, Name: "app",
		}, tarball: umbrella}
		if i%3 == 2 {
			r.OverQuota = jobs.OverQuotaReject
		}
		reqs = append(reqs, r)
	}
	reqs = append(reqs, makeAppRequests(t, sc)...)
	// Two requests any NATS client could publish, each wrong in its own
	// way: a misspelt field, and a tenant that is not the subject's.
	sha := strings.Repeat("ab", 20)
	for i, bad := range []struct{ tenant, subjectTenant, extra string }{
		{"acme", "acme", `,"retrunUrl":"https://platform.example/"`},
		{"acme", "globex", ""},
	} {
		id := fmt.Sprintf("chaos-bad-%d", i)
		body := `{"version":1,"id":"` + id + `","tenant":"` + bad.tenant + `","name":"app",` +
			`"source":{"bucket":"` + jobs.BucketSources + `","sha1":"` + sha + `","size":1}` + bad.extra + `}`
		reqs = append(reqs, request{
			Request: jobs.Request{ID: id, Tenant: bad.subjectTenant, Name: "app"},
			raw:     []byte(body), subject: jobs.RequestSubject(bad.subjectTenant, id),
		})
	}
	return reqs
}
