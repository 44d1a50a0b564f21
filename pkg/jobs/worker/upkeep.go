package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/internal/fair"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

// The upkeep of apps between their versions, run by one worker of the
// fleet at a time (the holder of the upkeep lock in DEPLOY_APPS): every
// AppsConfig.UpkeepEvery it reads every app's record and
//   - publishes the claimed and expired events not yet published;
//   - asks Vercel, every CheckEvery, whether a live app's project is
//     still the team's: one that left it was claimed;
//   - deletes the apps unclaimed past their TTL (project first: a claim
//     accepted meanwhile fails instead of leaving the user a project
//     whose database is gone; then the database), each deletion taken by
//     compare-and-set so no two workers delete one app, and never one
//     whose version is in flight;
//   - sets the inventory's metrics: apps by state, projects and databases
//     held against the plan's caps.
//
// Its calls go one at a time, at most one per UpkeepPace, in the batch
// class of the app's tenant: deploys' calls go first in every waiting
// line, and the endpoints it uses most (project and database deletion)
// are ones deploys only use after a failure.

// upkeepLockKey is the upkeep lock's key in DEPLOY_APPS; no app has it
// (a tenant name starts with a letter or digit).
const upkeepLockKey = "_upkeep"

// upkeepLock is the lock's value.
type upkeepLock struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

// runUpkeep runs the upkeep while this worker holds the lock, until ctx
// ends.
func (w *Worker) runUpkeep(ctx context.Context) {
	if w.assets.Apps == nil {
		return
	}
	// The lock and the expiries it takes are this Worker's alone: workers
	// in one process share an Owner.
	u := &upkeep{w: w, c: w.cfg.Apps, id: w.cfg.Owner + "/" + jobs.NewID()[:8]}
	defer w.m.UpkeepLeader(false)
	for {
		lead := u.lead(ctx)
		w.m.UpkeepLeader(lead)
		if lead {
			u.pass(ctx)
		}
		if clock.Sleep(ctx, u.c.UpkeepEvery) != nil {
			return
		}
	}
}

type upkeep struct {
	w        *Worker
	id       string // owner of the lock and of the expiries it runs
	c        AppsConfig
	rev      uint64    // the lock's revision this worker wrote
	until    time.Time // the lock's end as this worker wrote it
	lastCall time.Time
}

// lockLife is how long a lock lasts without renewal.
func (u *upkeep) lockLife() time.Duration { return max(3*u.c.UpkeepEvery, 10*time.Second) }

// lead takes or renews the upkeep lock; it reports whether this worker
// holds it.
func (u *upkeep) lead(ctx context.Context) bool {
	kv, now := u.w.assets.Apps, u.w.now()
	val, _ := json.Marshal(upkeepLock{Owner: u.id, Until: now.Add(u.lockLife())})
	e, err := kv.Get(ctx, upkeepLockKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		u.rev, err = kv.Create(ctx, upkeepLockKey, val)
	case err != nil:
		return false
	default:
		var l upkeepLock
		if json.Unmarshal(e.Value(), &l) == nil && l.Owner != u.id && now.Before(l.Until) {
			return false
		}
		u.rev, err = kv.Update(ctx, upkeepLockKey, val, e.Revision())
	}
	if err != nil {
		return false
	}
	u.until = now.Add(u.lockLife())
	return true
}

// holds reports whether the lock is still this worker's, renewing it
// when a third of its life is gone.
func (u *upkeep) holds(ctx context.Context) bool {
	now := u.w.now()
	if u.until.Sub(now) > 2*u.lockLife()/3 {
		return true
	}
	val, _ := json.Marshal(upkeepLock{Owner: u.id, Until: now.Add(u.lockLife())})
	rev, err := u.w.assets.Apps.Update(ctx, upkeepLockKey, val, u.rev)
	if err != nil {
		return false
	}
	u.rev, u.until = rev, now.Add(u.lockLife())
	return true
}

// teamCount is one team's inventory.
type teamCount struct {
	byState             map[string]int
	projects, databases int
	oldest              time.Duration
	due                 int
}

// pass is one pass over every app.
func (u *upkeep) pass(ctx context.Context) {
	apps, err := jobs.ListApps(ctx, u.w.assets.Apps, "")
	if err != nil {
		u.w.log.Warn("app upkeep: apps unreadable", "err", err)
		return
	}
	now := u.w.now()
	u.inventory(apps, now)
	// Oldest versions first: they expire first.
	slices.SortStableFunc(apps, func(a, b jobs.App) int { return a.LastVersionAt.Compare(b.LastVersionAt) })
	dry := 0
	for i := range apps {
		if ctx.Err() != nil || !u.holds(ctx) {
			return
		}
		a := &apps[i]
		switch {
		case (a.State == jobs.AppClaimed || a.State == jobs.AppExpired) && !a.Announced:
			typ := jobs.TypeClaimed
			if a.State == jobs.AppExpired {
				typ = jobs.TypeExpired
			}
			if err := u.w.announce(ctx, a, typ); err != nil {
				u.w.log.Warn("app upkeep: event not published", "app", a.ID, "tenant", a.Tenant, "err", err)
			}
		case a.Busy != "" && now.Sub(a.BusySince) > staleBusy:
			u.settleStale(ctx, a)
		case a.Expires(u.c.TTL, now) && u.c.DryRun:
			dry++
			u.w.log.Info("app upkeep (dry run): would expire", "tenant", a.Tenant, "app", a.ID,
				"project_id", a.ProjectID, "store_id", a.StoreID, "last_version", a.LastVersionAt)
		case a.Expires(u.c.TTL, now) || (a.State == jobs.AppExpiring && !u.c.DryRun):
			u.expire(ctx, a)
		case a.State == jobs.AppLive && a.Busy == "" && now.Sub(laterOf(a.CheckedAt, a.LastVersionAt)) >= u.c.CheckEvery:
			u.check(ctx, a)
		}
	}
	if dry > 0 {
		u.w.log.Info("app upkeep (dry run): apps past their TTL", "count", dry, "ttl", u.c.TTL)
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// inventory sets the inventory's metrics from the apps' records.
func (u *upkeep) inventory(apps []jobs.App, now time.Time) {
	teams := map[string]*teamCount{}
	for i := range apps {
		a := &apps[i]
		team := cmp.Or(a.Team, "personal")
		t := teams[team]
		if t == nil {
			t = &teamCount{byState: map[string]int{}, oldest: -1}
			for _, s := range jobs.AppStates() {
				t.byState[string(s)] = 0
			}
			teams[team] = t
		}
		t.byState[string(a.State)]++
		if a.State.Holds() && a.ProjectID != "" {
			t.projects++
		}
		if (a.State.Holds() && a.StoreID != "") || (a.State == jobs.AppClaimed && a.Database == jobs.DatabaseStayed) {
			t.databases++
		}
		if a.State == jobs.AppLive && !a.LastVersionAt.IsZero() {
			t.oldest = max(t.oldest, now.Sub(a.LastVersionAt))
		}
		if a.Expires(u.c.TTL, now) {
			t.due++
		}
	}
	for team, t := range teams {
		u.w.m.AppInventory(team, t.byState, t.projects, t.databases, t.oldest.Seconds(), t.due)
		u.w.m.InventoryCap(team, u.c.ProjectCap, u.c.DatabaseCap)
	}
}

// call paces the upkeep's API calls and gives them the app's tenant's
// batch turn.
func (u *upkeep) call(ctx context.Context, a *jobs.App) (context.Context, error) {
	if wait := u.lastCall.Add(u.c.UpkeepPace).Sub(u.w.now()); wait > 0 {
		if err := clock.Sleep(ctx, wait); err != nil {
			return ctx, err
		}
	}
	u.lastCall = u.w.now()
	return fair.WithShare(ctx, fair.Share{Tenant: a.Tenant, Weight: u.w.cfg.TenantWeights[a.Tenant], Class: fair.Batch}), nil
}

// check asks whether a live app's project is still the team's.
func (u *upkeep) check(ctx context.Context, a *jobs.App) {
	cctx, err := u.call(ctx, a)
	if err != nil {
		return
	}
	_, _, err = u.w.pipeline.api.GetProject(cctx, a.ProjectID)
	u.w.m.UpkeepCall("claim_check")
	key := jobs.AppKey(a.Tenant, a.ID)
	switch {
	case isNotFound(err):
		if err := u.w.markClaimed(ctx, a.Tenant, a.ID, jobs.ClaimedViaCheck, u.databaseOutcome(ctx, a)); err != nil {
			u.w.log.Warn("app upkeep: claim not recorded", "tenant", a.Tenant, "app", a.ID, "err", err)
		}
		return
	case err != nil:
		u.w.log.Warn("app upkeep: claim check failed", "tenant", a.Tenant, "app", a.ID, "err", err)
		return
	}
	now := u.w.now()
	_, _ = jobs.UpdateApp(ctx, u.w.assets.Apps, key, func(x *jobs.App) (*jobs.App, error) {
		if x == nil || x.State != jobs.AppLive {
			return nil, nil
		}
		x.CheckedAt = now
		x.Calls.Checks++
		return x, nil
	})
}

// databaseOutcome tells whether a claimed app's database moved with its
// project: it did when the team no longer lists it.
func (u *upkeep) databaseOutcome(ctx context.Context, a *jobs.App) string {
	if a.StoreID == "" {
		return ""
	}
	cctx, err := u.call(ctx, a)
	if err != nil {
		return ""
	}
	stores, _, err := u.w.pipeline.api.ListStores(cctx)
	u.w.m.UpkeepCall("claim_check")
	if err != nil {
		return ""
	}
	for _, s := range stores {
		if s.InternalID == a.StoreID {
			return jobs.DatabaseStayed
		}
	}
	return jobs.DatabaseMoved
}

// expire deletes an app past its TTL: project, then database, each step
// recorded so a worker taking over after a crash goes on where it
// stopped; then the expired event.
func (u *upkeep) expire(ctx context.Context, a *jobs.App) {
	key, owner := jobs.AppKey(a.Tenant, a.ID), u.id
	log := u.w.log.With("tenant", a.Tenant, "app", a.ID)
	app, err := jobs.UpdateApp(ctx, u.w.assets.Apps, key, func(x *jobs.App) (*jobs.App, error) {
		// An expiry left by another worker is taken over once it has been
		// silent for a lock's life: its owner lost the lock by then.
		if x == nil || !jobs.StartExpiry(x, owner, u.c.TTL, u.lockLife(), u.w.now()) {
			return nil, errNotMine
		}
		return x, nil
	})
	if err != nil {
		if !errors.Is(err, errNotMine) {
			log.Warn("app upkeep: expiry not started", "err", err)
		}
		return
	}
	// calls counts the expiry's API calls not yet recorded in the app.
	calls := 0
	// record saves progress, if the expiry is still this worker's.
	record := func(change func(x *jobs.App)) bool {
		got, err := jobs.UpdateApp(ctx, u.w.assets.Apps, key, func(x *jobs.App) (*jobs.App, error) {
			if x == nil || x.State != jobs.AppExpiring || x.Expiry == nil || x.Expiry.Owner != owner {
				return nil, errNotMine
			}
			change(x)
			x.Calls.Expiry += calls
			x.UpdatedAt = u.w.now()
			return x, nil
		})
		if err != nil {
			return false
		}
		app, calls = got, 0
		return true
	}
	if !app.Expiry.ProjectDeleted && app.ProjectID != "" {
		if !app.Expiry.DeletingProject {
			// Is the project still the team's? One gone before the
			// expiry decided to delete it was claimed.
			cctx, err := u.call(ctx, app)
			if err != nil {
				return
			}
			_, _, err = u.w.pipeline.api.GetProject(cctx, app.ProjectID)
			u.w.m.UpkeepCall("expiry")
			calls++
			if isNotFound(err) {
				_ = u.w.markClaimed(ctx, app.Tenant, app.ID, jobs.ClaimedViaCheck, u.databaseOutcome(ctx, app))
				return
			}
			if err != nil {
				log.Warn("app upkeep: project unreadable; expiry waits", "err", err)
				return
			}
			// From here on the project is being deleted: a worker taking
			// over after a crash reads a project gone as deleted, not
			// claimed. (A claim accepted in the moment between the read
			// and the deletion ends as an expiry: the claim page then
			// fails for the user.)
			if !record(func(x *jobs.App) { x.Expiry.DeletingProject = true }) {
				return
			}
		}
		cctx, err := u.call(ctx, app)
		if err != nil {
			return
		}
		_, err = u.w.pipeline.api.DeleteProject(cctx, app.ProjectID)
		u.w.m.UpkeepCall("expiry")
		calls++
		if err != nil && !isNotFound(err) {
			log.Warn("app upkeep: project not deleted; expiry waits", "err", err)
			return
		}
		if !record(func(x *jobs.App) { x.Expiry.ProjectDeleted = true }) {
			return
		}
	}
	if !app.Expiry.StoreDeleted && app.StoreID != "" {
		cctx, err := u.call(ctx, app)
		if err != nil {
			return
		}
		_, err = u.w.pipeline.api.DeleteStore(cctx, app.StoreID)
		u.w.m.UpkeepCall("expiry")
		calls++
		if err != nil && !isNotFound(err) {
			log.Warn("app upkeep: database not deleted; expiry waits", "err", err)
			return
		}
		if !record(func(x *jobs.App) { x.Expiry.StoreDeleted = true }) {
			return
		}
	}
	if !record(func(x *jobs.App) { jobs.FinishExpiry(x, u.w.now()) }) {
		return
	}
	u.w.m.AppExpired(cmp.Or(app.Team, "personal"))
	log.Info("app expired unclaimed: project and database deleted", "project_id", app.ProjectID, "store_id", app.StoreID,
		"last_version", app.LastVersionAt)
	if err := u.w.announce(ctx, app, jobs.TypeExpired); err != nil {
		log.Warn("app upkeep: expired event not published; the next pass retries", "err", err)
	}
}

// staleBusy is how long a version may hold its app before the upkeep
// asks whether its job has ended.
const staleBusy = time.Minute

// settleStale lets go of an app whose version's job ended without doing
// so: a job dead-lettered out of deliveries ends outside the worker that
// ran it, and an app held by it would never take another version nor
// expire.
func (u *upkeep) settleStale(ctx context.Context, a *jobs.App) {
	st, err := jobs.ReadState(ctx, u.w.assets.Jobs, a.Tenant, a.Busy)
	if err != nil || (st != nil && !st.Done()) {
		return
	}
	if st == nil {
		st = &jobs.JobState{ID: a.Busy, Tenant: a.Tenant, Status: jobs.StatusFailed}
	}
	_, err = jobs.UpdateApp(ctx, u.w.assets.Apps, jobs.AppKey(a.Tenant, a.ID), func(x *jobs.App) (*jobs.App, error) {
		if !jobs.SettleVersion(x, st, u.w.now()) {
			return nil, nil
		}
		return x, nil
	})
	if err == nil {
		u.w.log.Info("app upkeep: let go of an app whose version ended elsewhere", "tenant", a.Tenant, "app", a.ID, "request_id", st.ID, "status", st.Status)
	}
}

// errNotMine stops an update of an app another worker has.
var errNotMine = errors.New("the app is not this worker's to change")
