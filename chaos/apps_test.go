package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go/jetstream"
)

// Apps in the chaos run. Every request is a version of an app: the
// ordinary requests each of their own, and appTenant's appVersions
// versions of each of its apps, submitted together (so they queue behind
// each other's busy app). Every app whose last version succeeded must end
// exactly once: claimed (every third of appTenant's apps is claimed by
// its "user" once its versions ended, while workers are still killed)
// or expired (APP_TTL after its last version, deleted by whichever
// worker holds the upkeep then).
const (
	appTenant   = "hooli"
	appVersions = 3
	appTTL      = 8 * time.Second
)

// appEnv is the workers' app settings: a short TTL, frequent claim
// checks (the workers have no public address: claims are found by
// checks), and a quick upkeep.
func appEnv() []string {
	return []string{
		"APP_TTL=" + appTTL.String(),
		"CLAIM_CHECK_EVERY=2s",
		"APP_UPKEEP_EVERY=500ms",
		"APP_UPKEEP_PACE=20ms",
	}
}

// appName is the id of appTenant's app i.
func appName(i int) string { return fmt.Sprintf("chaos-app-%02d", i) }

// makeAppRequests builds appTenant's versions.
func makeAppRequests(t *testing.T, sc scenario) []request {
	t.Helper()
	src := jobstest.Tarball(t, map[string]string{"package.json": `{"name":"hooli-app"}`, "index.html": "hooli"})
	var reqs []request
	for i := range max(sc.requests/20, 3) {
		for v := range appVersions {
			reqs = append(reqs, request{Request: jobs.Request{
				ID: fmt.Sprintf("%s-v%d", appName(i), v+1), Tenant: appTenant, Name: "site", App: appName(i),
			}, tarball: src, claim: i%3 == 0})
		}
	}
	return reqs
}

// claims is what the run's users did: the apps whose claim was accepted.
type claims struct {
	mu       sync.Mutex
	accepted map[string]bool // app key → the transfer was accepted
	done     chan struct{}   // closed when every claim was tried
}

// claimApps plays the users of the apps to claim: once every version of
// such an app has ended, it accepts the app's claim code, as the claim
// page would, unless the app expired first.
func claimApps(ctx context.Context, t *testing.T, client *jobs.Client, simURL string, reqs []request) *claims {
	c := &claims{accepted: map[string]bool{}, done: make(chan struct{})}
	versions := map[string][]string{}
	for _, r := range reqs {
		if r.claim {
			versions[r.App] = append(versions[r.App], r.ID)
		}
	}
	user, err := vercel.New(vercel.WithBaseURL(simURL), vercel.WithToken(simToken), vercel.WithTeamID("team_claimer"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		for _, app := range slices.Sorted(maps.Keys(versions)) {
			if !waitEnded(ctx, client, versions[app]) {
				return
			}
			a, err := client.App(ctx, appTenant, app)
			if err != nil || a == nil || a.State != jobs.AppLive || a.Claim == nil {
				continue // expired (or never made) before its user came
			}
			for ctx.Err() == nil {
				_, _, err := user.AcceptTransferRequest(ctx, a.Claim.Code, vercel.AcceptTransfer{})
				var apiErr *vercel.APIError
				if err == nil || (errors.As(err, &apiErr) && apiErr.StatusCode == 404) {
					c.mu.Lock()
					c.accepted[jobs.AppKey(appTenant, app)] = err == nil
					c.mu.Unlock()
					break
				}
				wait(ctx, 100*time.Millisecond) // a fault of the simulator: the user clicks again
			}
		}
	}()
	return c
}

// waitEnded waits until every one of ids has ended.
func waitEnded(ctx context.Context, client *jobs.Client, ids []string) bool {
	for ctx.Err() == nil {
		ended := 0
		for _, id := range ids {
			if st, err := client.Status(ctx, appTenant, id); err == nil && st.Last != nil && st.Last.Terminal() {
				ended++
			}
		}
		if ended == len(ids) {
			return true
		}
		wait(ctx, 200*time.Millisecond) // polling the users' requests
	}
	return false
}

// appsSettled reports whether every app has come to its end: claimed or
// expired and announced, or failed; and every claim was tried.
func appsSettled(ctx context.Context, js jetstream.JetStream, c *claims) bool {
	select {
	case <-c.done:
	default:
		return false
	}
	kv, err := js.KeyValue(ctx, jobs.BucketApps)
	if err != nil {
		return false
	}
	apps, err := jobs.ListApps(ctx, kv, "")
	if err != nil {
		return false
	}
	for _, a := range apps {
		switch {
		case a.State == jobs.AppFailed:
		case (a.State == jobs.AppClaimed || a.State == jobs.AppExpired) && a.Announced:
		default:
			return false
		}
	}
	return true
}

// verifyApps checks the apps' guarantees: each app that lived ends once,
// claimed or expired, never both; a claimed app keeps its project in the
// user's team; an expired one left nothing behind; the versions of an
// app share one project.
func verifyApps(t *testing.T, js jetstream.JetStream, sim *vercelsim.Server, reqs []request, evs []jobs.Event, c *claims) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, jobs.BucketApps)
	if err != nil {
		t.Fatalf("apps bucket: %v", err)
	}
	apps, err := jobs.ListApps(ctx, kv, "")
	if err != nil {
		t.Fatalf("list apps: %v", err)
	}
	ends := map[string][]jobs.Event{}
	for _, ev := range evs {
		if ev.Type == jobs.TypeClaimed || ev.Type == jobs.TypeExpired {
			ends[jobs.AppKey(ev.Data.Tenant, ev.Data.App)] = append(ends[jobs.AppKey(ev.Data.Tenant, ev.Data.App)], ev)
		}
	}
	projects := map[string]vercelsim.Project{}
	for _, p := range sim.Projects() {
		projects[p.ID] = p
	}
	stores := map[string]bool{}
	for _, s := range sim.Stores() {
		stores[s.ID] = true
	}
	count := map[jobs.AppState]int{}
	var claimedOK, expiredOK, versions int
	for _, a := range apps {
		key := jobs.AppKey(a.Tenant, a.ID)
		count[a.State]++
		versions += a.Versions
		got := ends[key]
		switch a.State {
		case jobs.AppFailed:
			if len(got) != 0 {
				t.Errorf("failed app %s has %d end events", key, len(got))
			}
			continue
		case jobs.AppClaimed, jobs.AppExpired:
		default:
			t.Errorf("app %s is %s after the run, not claimed, expired or failed", key, a.State)
			continue
		}
		if len(got) != 1 {
			var kinds []string
			for _, ev := range got {
				kinds = append(kinds, ev.Short())
			}
			t.Errorf("app %s (%s) has %d end events: %v", key, a.State, len(got), kinds)
			continue
		}
		c.mu.Lock()
		accepted := c.accepted[key]
		c.mu.Unlock()
		switch a.State {
		case jobs.AppClaimed:
			p, ok := projects[a.ProjectID]
			switch {
			case !accepted:
				t.Errorf("app %s claimed, but no user accepted its transfer", key)
			case got[0].Type != jobs.TypeClaimed:
				t.Errorf("claimed app %s announced %s", key, got[0].Short())
			case !ok || p.AccountID != "team_claimer":
				t.Errorf("claimed app %s: its project %s is gone or not the user's (%+v)", key, a.ProjectID, p)
			default:
				claimedOK++
			}
		case jobs.AppExpired:
			_, projectLeft := projects[a.ProjectID]
			switch {
			case accepted:
				t.Errorf("app %s expired although its user claimed it", key)
			case got[0].Type != jobs.TypeExpired:
				t.Errorf("expired app %s announced %s", key, got[0].Short())
			case projectLeft || stores[a.StoreID]:
				t.Errorf("expired app %s left its project (%t) or database (%t)", key, projectLeft, stores[a.StoreID])
			default:
				expiredOK++
			}
		}
	}
	// Versions of one app: one project and one database, however many
	// versions and deliveries.
	st := sim.Stats()
	multi := 0
	for _, r := range reqs {
		if r.App == "" {
			continue
		}
		if pn, sn := jobs.ProjectName(&r.Request), jobs.StoreName(&r.Request); st.ProjectsCreated[pn] > 1 || st.StoresCreated[sn] > 1 {
			t.Errorf("app %s: %d projects named %s, %d databases named %s", r.App, st.ProjectsCreated[pn], pn, st.StoresCreated[sn], sn)
		}
		multi++
	}
	c.mu.Lock()
	tried := len(c.accepted)
	c.mu.Unlock()
	return fmt.Sprintf("%d apps (%d versions deployed; %d requests of %s's %d apps × %d versions): %d claimed (project in the user's team) of %d claims tried, %d expired (nothing left), %d failed; one end event each",
		len(apps), versions, multi, appTenant, multi/appVersions, appVersions, claimedOK, tried, expiredOK, count[jobs.AppFailed])
}
