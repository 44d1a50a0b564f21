package worker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// appRequest is a request for a version of app.
func appRequest(tenant, name, app string) jobs.Request {
	r := jobstest.Request(tenant, name)
	r.App = app
	return r
}

// appEvents are the app events (claimed, expired) of an app.
func appEvents(t *testing.T, h *jobstest.Harness, tenant, app string, typ jobs.EventType) []jobs.Event {
	t.Helper()
	var out []jobs.Event
	for _, ev := range h.Events(t, tenant, app) {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func readApp(t *testing.T, h *jobstest.Harness, tenant, app string) *jobs.App {
	t.Helper()
	a, err := h.Client.App(context.Background(), tenant, app)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// claimer is the end user's side: a Vercel client of another team.
func claimer(t *testing.T, h *jobstest.Harness) *vercel.Client {
	return jobstest.NewAPI(t, h.SimURL, vercel.WithTeamID("team_claimer"))
}

func TestVersionsDeployIntoTheAppsProject(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Worker: worker.Config{Apps: worker.AppsConfig{DomainSuffix: "apps.example"}}})
	tgz := h.Tarball(t, nil)
	first := h.Submit(t, appRequest("acme", "chat", "chat-1"), tgz).ID
	v1 := h.WaitTerminal(t, "acme", waitLong, first)[first]
	if v1.Type != jobs.TypeSucceeded || v1.Data.AppVersion != 1 || v1.Data.App != "chat-1" {
		t.Fatalf("first version: %s %+v", v1.Type, v1.Data)
	}
	if !strings.HasPrefix(v1.Data.URL, "https://chat-") || !strings.HasSuffix(v1.Data.URL, ".apps.example") {
		t.Errorf("url %q, want the app's domain under the platform's suffix", v1.Data.URL)
	}
	second := h.Submit(t, appRequest("acme", "chat", "chat-1"), h.Tarball(t, map[string]string{"index.html": "v2"})).ID
	v2 := h.WaitTerminal(t, "acme", waitLong, second)[second]
	if v2.Type != jobs.TypeSucceeded || v2.Data.AppVersion != 2 || v2.Data.ProjectID != v1.Data.ProjectID || v2.Data.URL != v1.Data.URL {
		t.Fatalf("second version: %s %+v, want version 2 in project %s at %s", v2.Type, v2.Data, v1.Data.ProjectID, v1.Data.URL)
	}
	if v2.Data.ClaimCode != v1.Data.ClaimCode {
		t.Errorf("the second version issued a new claim code while the first had a day to live")
	}
	// Two more at once: one waits for the other, both land in the project.
	a := h.Submit(t, appRequest("acme", "chat", "chat-1"), tgz).ID
	b := h.Submit(t, appRequest("acme", "chat", "chat-1"), h.Tarball(t, map[string]string{"index.html": "v4"})).ID
	ends := h.WaitTerminal(t, "acme", waitLong, a, b)
	versions := map[int]bool{}
	for _, ev := range ends {
		if ev.Type != jobs.TypeSucceeded || ev.Data.ProjectID != v1.Data.ProjectID {
			t.Fatalf("concurrent version: %s %+v", ev.Type, ev.Data)
		}
		versions[ev.Data.AppVersion] = true
	}
	if !versions[3] || !versions[4] {
		t.Errorf("concurrent versions numbered %v, want 3 and 4", versions)
	}
	st := h.Sim.Stats()
	if st.Succeeded[vercel.EndpointCreateProject] != 1 || st.Succeeded[vercel.EndpointCreateStore] != 1 ||
		st.Succeeded[vercel.EndpointCreateDeployment] != 4 || st.Succeeded[vercel.EndpointAuthorize] != 1 {
		t.Errorf("calls %v: want one project, authorization and database, four deployments", st.Succeeded)
	}
	app := readApp(t, h, "acme", "chat-1")
	if app.State != jobs.AppLive || app.Versions != 4 || app.Busy != "" || app.FirstRequest != first {
		t.Errorf("app %+v", app)
	}
	// A request without app is an app of its own.
	solo := h.Submit(t, jobstest.Request("acme", "solo"), tgz).ID
	if ev := h.WaitTerminal(t, "acme", waitLong, solo)[solo]; ev.Type != jobs.TypeSucceeded || ev.Data.App != solo || ev.Data.AppVersion != 1 {
		t.Errorf("request without app: %s %+v", ev.Type, ev.Data)
	}
}

// startWithCallback starts a harness whose workers have a public address:
// a loopback server in front of the first worker's ClaimHandler.
func startWithCallback(t *testing.T, cfg jobstest.Config) (*jobstest.Harness, string) {
	t.Helper()
	var (
		mu sync.Mutex
		h  *jobstest.Harness
	)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		w := h.Workers[0]
		mu.Unlock()
		w.ClaimHandler().ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	cfg.Worker.Apps.CallbackURL, cfg.Worker.Apps.CallbackSecret = srv.URL, "callback-key-for-tests"
	mu.Lock()
	defer mu.Unlock()
	h = jobstest.Start(t, cfg)
	return h, srv.URL
}

func TestClaimedAppIsAnnouncedOnceAndNeverExpires(t *testing.T) {
	t.Parallel()
	h, public := startWithCallback(t, jobstest.Config{Worker: worker.Config{Apps: worker.AppsConfig{
		TTL: 500 * time.Millisecond, UpkeepEvery: 50 * time.Millisecond, UpkeepPace: time.Millisecond, CheckEvery: 50 * time.Millisecond,
	}}})
	tgz := h.Tarball(t, nil)
	id := h.Submit(t, appRequest("acme", "site", "site-1"), tgz).ID
	ev := h.WaitTerminal(t, "acme", waitLong, id)[id]
	if ev.Type != jobs.TypeSucceeded {
		t.Fatalf("deploy: %s %+v", ev.Type, ev.Data.Error)
	}
	codes := h.Sim.TransferCodes()
	if len(codes) != 1 || !strings.Contains(codes[0].CallbackURL, "/claims/acme/site-1") {
		t.Fatalf("transfer codes %+v, want one with the app's callback", codes)
	}
	if _, _, err := claimer(t, h).AcceptTransferRequest(context.Background(), ev.Data.ClaimCode, vercel.AcceptTransfer{}); err != nil {
		t.Fatal(err)
	}
	jobstest.Eventually(t, waitLong, "no claimed event", func() bool {
		return len(appEvents(t, h, "acme", "site-1", jobs.TypeClaimed)) == 1
	})
	claimed := appEvents(t, h, "acme", "site-1", jobs.TypeClaimed)[0]
	if claimed.Data.ClaimedVia != jobs.ClaimedViaCallback || claimed.Data.Database != jobs.DatabaseMoved || claimed.Data.App != "site-1" {
		t.Errorf("claimed event %+v", claimed.Data)
	}
	// A new version is refused, and the app outlives its TTL untouched.
	again := h.Submit(t, appRequest("acme", "site", "site-1"), tgz).ID
	rej := h.WaitTerminal(t, "acme", waitLong, again)[again]
	if rej.Type != jobs.TypeRejected || rej.Data.Error.Code != jobs.CodeAppClaimed {
		t.Fatalf("version of a claimed app: %s %+v", rej.Type, rej.Data.Error)
	}
	if n := len(deadLetters(t, h, "acme")); n != 0 {
		t.Errorf("%d dead letters: a version its app refused is not dead-lettered", n)
	}
	passesAfter(t, h, 3)
	if n := len(appEvents(t, h, "acme", "site-1", jobs.TypeClaimed)); n != 1 {
		t.Errorf("%d claimed events, want 1", n)
	}
	if n := h.Sim.Stats().Requests[vercel.EndpointDeleteProject] + h.Sim.Stats().Requests[vercel.EndpointDeleteStore]; n != 0 {
		t.Errorf("%d deletions of a claimed app", n)
	}
	if p, ok := h.Sim.Project(ev.Data.ProjectID); !ok || p.AccountID != "team_claimer" {
		t.Errorf("the claimed project: %+v, %v", p, ok)
	}
	// A callback without the app's signature is refused.
	req, _ := http.NewRequest(http.MethodPost, public+worker.ClaimCallbackPath("acme", "probe"), strings.NewReader(`{"projectId":"prj_x"}`))
	req.Header.Set("X-Vercel-Signature", "00ff")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged callback answered %d, want 401", resp.StatusCode)
	}
}

// passesAfter waits until the upkeep has made n more passes over the apps,
// counted by the checks it records on a live app of its own.
func passesAfter(t *testing.T, h *jobstest.Harness, n int) {
	t.Helper()
	probe := h.Submit(t, appRequest("acme", "probe", "probe-"+jobs.NewID()[:8]), h.Tarball(t, nil))
	if ev := h.WaitTerminal(t, "acme", waitLong, probe.ID)[probe.ID]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("probe: %s", ev.Type)
	}
	app := ev(t, h, probe.ID)
	seen := 0
	last := time.Time{}
	jobstest.Eventually(t, waitLong, "the upkeep made no passes", func() bool {
		a := readApp(t, h, "acme", app)
		if a != nil && !a.CheckedAt.Equal(last) {
			last = a.CheckedAt
			seen++
		}
		return seen >= n || (a != nil && a.State != jobs.AppLive)
	})
}

func ev(t *testing.T, h *jobstest.Harness, id string) string {
	t.Helper()
	st, err := h.Client.Status(context.Background(), "acme", id)
	if err != nil || st.State == nil {
		t.Fatalf("status of %s: %v", id, err)
	}
	return st.State.App
}

func TestClaimIsFoundWithoutCallback(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		Sim: vercelsim.Config{Quirks: vercelsim.Quirks{StoreTransferFails: true}},
		Worker: worker.Config{Apps: worker.AppsConfig{
			UpkeepEvery: 50 * time.Millisecond, UpkeepPace: time.Millisecond, CheckEvery: 100 * time.Millisecond,
		}},
	})
	id := h.Submit(t, appRequest("acme", "site", "quiet"), h.Tarball(t, nil)).ID
	ev := h.WaitTerminal(t, "acme", waitLong, id)[id]
	if ev.Type != jobs.TypeSucceeded {
		t.Fatalf("deploy: %s", ev.Type)
	}
	if _, _, err := claimer(t, h).AcceptTransferRequest(context.Background(), ev.Data.ClaimCode, vercel.AcceptTransfer{}); err != nil {
		t.Fatal(err)
	}
	jobstest.Eventually(t, waitLong, "the check never found the claim", func() bool {
		return len(appEvents(t, h, "acme", "quiet", jobs.TypeClaimed)) == 1
	})
	c := appEvents(t, h, "acme", "quiet", jobs.TypeClaimed)[0]
	if c.Data.ClaimedVia != jobs.ClaimedViaCheck || c.Data.Database != jobs.DatabaseStayed {
		t.Errorf("claimed %+v, want found by a check, the database stayed", c.Data)
	}
	if a := readApp(t, h, "acme", "quiet"); a.Calls.Checks == 0 && a.State != jobs.AppClaimed {
		t.Errorf("app %+v", a)
	}
}

func TestUnclaimedAppExpiresOnceAcrossWorkers(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Workers: 3, Worker: worker.Config{Apps: worker.AppsConfig{
		TTL: 300 * time.Millisecond, UpkeepEvery: 20 * time.Millisecond, UpkeepPace: time.Millisecond,
	}}})
	tgz := h.Tarball(t, nil)
	ids := make([]string, 0, 6)
	for i := range 6 {
		ids = append(ids, h.Submit(t, appRequest("acme", "gone", "gone-"+string(rune('a'+i))), tgz).ID)
	}
	for id, ev := range h.WaitTerminal(t, "acme", waitLong, ids...) {
		if ev.Type != jobs.TypeSucceeded {
			t.Fatalf("%s: %s", id, ev.Type)
		}
	}
	jobstest.Eventually(t, waitLong, "the apps never expired", func() bool {
		for i := range 6 {
			if len(appEvents(t, h, "acme", "gone-"+string(rune('a'+i)), jobs.TypeExpired)) != 1 {
				return false
			}
		}
		return true
	})
	st := h.Sim.Stats()
	if st.Succeeded[vercel.EndpointDeleteProject] != 6 || st.Requests[vercel.EndpointDeleteProject] != 6 ||
		st.Requests[vercel.EndpointDeleteStore] != 6 {
		t.Errorf("deletions %v / %v: want each app's project and database deleted once", st.Requests, st.Succeeded)
	}
	if n := len(h.Sim.Projects()); n != 0 {
		t.Errorf("%d projects left", n)
	}
	if n := len(h.Sim.Stores()); n != 0 {
		t.Errorf("%d databases left", n)
	}
	again := h.Submit(t, appRequest("acme", "gone", "gone-a"), tgz).ID
	if rej := h.WaitTerminal(t, "acme", waitLong, again)[again]; rej.Type != jobs.TypeRejected || rej.Data.Error.Code != jobs.CodeAppExpired {
		t.Fatalf("version of an expired app: %s %+v", rej.Type, rej.Data.Error)
	}
}

// offsetClock is the time plus an offset a test moves: the simulator and
// the worker share it, so a day passes at once for both.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }
func (c *offsetClock) clock() func() time.Time { return c.Now }

func TestClaimRefreshAfterADayGivesAWorkingCode(t *testing.T) {
	t.Parallel()
	var clk offsetClock
	h := jobstest.Start(t, jobstest.Config{
		Sim:    vercelsim.Config{Clock: clk.clock()},
		Worker: worker.Config{Clock: clk.clock()},
	})
	id := h.Submit(t, appRequest("acme", "late", "late"), h.Tarball(t, nil)).ID
	ev := h.WaitTerminal(t, "acme", waitLong, id)[id]
	if ev.Type != jobs.TypeSucceeded {
		t.Fatalf("deploy: %s", ev.Type)
	}
	ctx := context.Background()
	// Within the day, the code in hand is handed out again.
	ans, err := h.Client.RefreshClaim(ctx, "acme", "late", jobs.ClaimAsk{})
	if err != nil || ans.Code != ev.Data.ClaimCode || ans.Fresh {
		t.Fatalf("refresh within the day: %+v, %v", ans, err)
	}
	clk.Advance(25 * time.Hour)
	ans, err = h.Client.RefreshClaim(ctx, "acme", "late", jobs.ClaimAsk{ReturnURL: "https://platform.example/back"})
	if err != nil || !ans.Fresh || ans.Code == ev.Data.ClaimCode || !strings.Contains(ans.ClaimURL, ans.Code) {
		t.Fatalf("refresh after a day: %+v, %v", ans, err)
	}
	user := claimer(t, h)
	if _, _, err := user.AcceptTransferRequest(ctx, ev.Data.ClaimCode, vercel.AcceptTransfer{}); err == nil {
		t.Error("the day-old code still works")
	}
	if _, _, err := user.AcceptTransferRequest(ctx, ans.Code, vercel.AcceptTransfer{}); err != nil {
		t.Fatalf("the fresh code: %v", err)
	}
	if a := readApp(t, h, "acme", "late"); a.Claim == nil || a.Claim.Code != ans.Code || a.Calls.Claims != 1 {
		t.Errorf("app %+v, want the fresh code recorded and counted as the app's one code after its deploy", a)
	}
	// Asked again after the claim, the refresh says so.
	jobstest.Eventually(t, waitLong, "the refresh never said claimed", func() bool {
		_, err := h.Client.RefreshClaim(ctx, "acme", "late", jobs.ClaimAsk{Fresh: true})
		ce, ok := err.(*jobs.ClaimError)
		return ok && ce.Code == jobs.CodeAppClaimed
	})
	if _, err := h.Client.RefreshClaim(ctx, "acme", "nobody", jobs.ClaimAsk{}); err == nil {
		t.Error("a refresh for an unknown app succeeded")
	}
}

func TestDatabaseCapIsAClearFailure(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{Sim: vercelsim.Config{MaxStores: 1}})
	tgz := h.Tarball(t, nil)
	ok := h.Submit(t, appRequest("acme", "one", "one"), tgz).ID
	if ev := h.WaitTerminal(t, "acme", waitLong, ok)[ok]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("first: %s", ev.Type)
	}
	full := h.Submit(t, appRequest("acme", "two", "two"), tgz).ID
	ev := h.WaitTerminal(t, "acme", waitLong, full)[full]
	if ev.Type != jobs.TypeFailed || ev.Data.Error.Code != "too_many_stores" || ev.Data.Error.Step != jobs.StepCreateDatabase {
		t.Fatalf("past the cap: %s %+v", ev.Type, ev.Data.Error)
	}
	if n := h.Sim.Stats().Requests[vercel.EndpointCreateStore]; n != 2 {
		t.Errorf("%d store creations, want 2: a full team is not asked again", n)
	}
	if a := readApp(t, h, "acme", "two"); a.State != jobs.AppFailed || a.Busy != "" {
		t.Errorf("app %+v, want failed and free", a)
	}
}

// A version whose job ended elsewhere (dead-lettered out of deliveries)
// and left its app held is let go by the upkeep, so the app can expire.
func TestUpkeepLetsGoOfAVersionThatEndedElsewhere(t *testing.T) {
	t.Parallel()
	var clk offsetClock
	h := jobstest.Start(t, jobstest.Config{Sim: vercelsim.Config{Clock: clk.clock()}, Worker: worker.Config{Clock: clk.clock(), Apps: worker.AppsConfig{
		TTL: time.Hour, UpkeepEvery: 20 * time.Millisecond, UpkeepPace: time.Millisecond,
	}}})
	id := h.Submit(t, appRequest("acme", "held", "held"), h.Tarball(t, nil)).ID
	if ev := h.WaitTerminal(t, "acme", waitLong, id)[id]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("deploy: %s", ev.Type)
	}
	ctx := context.Background()
	if _, err := jobs.UpdateApp(ctx, h.Assets.Apps, jobs.AppKey("acme", "held"), func(a *jobs.App) (*jobs.App, error) {
		a.Busy, a.BusySince = "ghost", clk.Now()
		return a, nil
	}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour) // past the TTL and the stale hold
	jobstest.Eventually(t, waitLong, "the app held by a version that ended elsewhere never expired", func() bool {
		return len(appEvents(t, h, "acme", "held", jobs.TypeExpired)) == 1
	})
}
