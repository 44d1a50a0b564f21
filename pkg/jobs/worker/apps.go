package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

// A job's side of its app (jobs/apps.go draws the app's states): before
// its first step the job takes the app (bindApp), and a version after the
// first starts at the upload, in the app's project, with its database;
// when the job has ended, its outcome becomes the app's (settleApp),
// before the terminal event goes out. The upkeep of apps between their
// versions (claims, expiry, inventory) is upkeep.go's.

// AppsConfig configures apps' domains, claims and expiry. Every worker of
// a fleet should be given the same.
type AppsConfig struct {
	// DomainSuffix is the platform's own domain under which each app gets
	// its production domain, <app label>.<suffix> ("myplatform.app"):
	// added to the project when the app is made, and the URL in its
	// results. The suffix must be a domain the Vercel team has. Defaults
	// to none: apps are served on <project>.vercel.app.
	DomainSuffix string
	// TTL is how long an unclaimed app lives after its last version; then
	// the upkeep deletes its project and database and publishes its
	// expired event. Defaults to 0: apps are kept forever.
	TTL time.Duration
	// DryRun makes the upkeep log and count the apps past their TTL
	// instead of deleting them.
	DryRun bool
	// CallbackURL is the worker's public base URL (https://…): claim codes
	// are issued with the callback <CallbackURL>/claims/<tenant>/<app>,
	// which Vercel calls when the app is claimed (ClaimHandler serves
	// it). Defaults to none: claims are found by the upkeep's checks only.
	CallbackURL string
	// CallbackSecret is the key each app's callback secret is derived
	// from (HMAC-SHA256 of <tenant>.<app>): no secret is stored, and one
	// app's does not open another's. Required with CallbackURL.
	CallbackSecret string
	// CheckEvery is how often the upkeep asks Vercel whether a live app's
	// project is still the team's (one GET each). Defaults to 6 h.
	CheckEvery time.Duration
	// UpkeepEvery is the interval between the upkeep's passes over the
	// apps. Defaults to 30 s.
	UpkeepEvery time.Duration
	// UpkeepPace is the least time between two of the upkeep's API calls,
	// so it never takes more than a trickle of the budget. Defaults to 1 s.
	UpkeepPace time.Duration
	// ProjectCap and DatabaseCap are the plan's caps (Vercel Hobby: 200
	// projects; Prisma: 50 databases on Free, 1 000 on paid plans), for
	// the inventory's metrics and its alert. Defaults to 0: unknown.
	ProjectCap, DatabaseCap int
}

func (c AppsConfig) withDefaults() AppsConfig {
	if c.CheckEvery <= 0 {
		c.CheckEvery = 6 * time.Hour
	}
	if c.UpkeepEvery <= 0 {
		c.UpkeepEvery = 30 * time.Second
	}
	if c.UpkeepPace <= 0 {
		c.UpkeepPace = time.Second
	}
	return c
}

// appBusyRecheck is how often a version waiting for the app's version in
// flight looks again without news from the bucket.
const appBusyRecheck = 5 * time.Second

// bindApp takes the job's app for its version before the first step. A
// later version starts past the steps that made the app. stop means the
// job ended here (the app refuses versions) or was handed back.
func (j *job) bindApp(ctx context.Context) (outcome, bool) {
	kv := j.w.assets.Apps
	if kv == nil || j.st.AppVersion > 0 {
		return handedBack, false
	}
	key := jobs.AppKey(j.req.Tenant, j.req.AppID())
	team := j.p.api.TeamID()
	// A request without an app, on its first delivery, is almost surely
	// a new app: it is created without reading first.
	j.app = jobs.AppRef{Guessed: j.req.App == "" && j.d.First}
	for {
		var b jobs.Binding
		app, err := jobs.UpdateAppAt(ctx, kv, key, &j.app, func(a *jobs.App) (*jobs.App, error) {
			n, bb, err := jobs.BindVersion(a, j.req, team, j.now())
			b = bb
			if err != nil {
				return nil, err
			}
			return n, nil
		})
		var busy *jobs.AppBusyError
		switch {
		case err == nil:
			j.st.App, j.st.AppVersion = j.req.AppID(), b.Version
			if !b.First {
				j.takeApp(app)
			}
			return handedBack, false
		case errors.Is(err, jobs.ErrAppClaimed):
			return j.end(ctx, jobs.TypeRejected, &jobs.EventError{Code: jobs.CodeAppClaimed, Field: "app", Message: err.Error()}), true
		case errors.Is(err, jobs.ErrAppExpired):
			return j.end(ctx, jobs.TypeRejected, &jobs.EventError{Code: jobs.CodeAppExpired, Field: "app", Message: err.Error()}), true
		case errors.As(err, &busy):
			if err := j.waitForVersion(ctx, key, busy.Request); err != nil {
				return j.interrupted(ctx, ""), true
			}
		case ctx.Err() != nil:
			return j.interrupted(ctx, ""), true
		default:
			j.logger().Warn("app record unavailable; handing the request back", "app", j.req.AppID(), "err", err)
			return j.handBackLater(), true
		}
	}
}

// takeApp starts a later version from the app: its project, database and
// domain, past the steps that made them.
func (j *job) takeApp(a *jobs.App) {
	st := j.st
	st.ProjectID, st.ProjectName, st.StoreID, st.StoreName, st.Domain = a.ProjectID, a.ProjectName, a.StoreID, a.StoreName, a.Domain
	st.Step = jobs.StepConnectDatabase
	if a.ClaimValid(j.now()) {
		// The user's link still works: hand it out again rather than
		// spend a call on a new code.
		st.ClaimCode, st.ClaimIssuedAt = a.Claim.Code, a.Claim.IssuedAt
	}
	j.logger().Info("deploying a new version of the app", "app", a.ID, "version", a.Versions+1, "project_id", a.ProjectID)
}

// waitForVersion waits until the app's version in flight (request busy)
// lets it go. A version whose job has ended but did not let go (its
// worker died in between) is settled here on its behalf.
func (j *job) waitForVersion(ctx context.Context, key, busy string) error {
	other, err := jobs.ReadState(ctx, j.w.assets.Jobs, j.req.Tenant, busy)
	if err == nil && (other == nil || other.Done()) {
		if other == nil {
			other = &jobs.JobState{ID: busy, Tenant: j.req.Tenant, Status: jobs.StatusFailed}
		}
		_, err := jobs.UpdateApp(ctx, j.w.assets.Apps, key, func(a *jobs.App) (*jobs.App, error) {
			if !jobs.SettleVersion(a, other, j.now()) {
				return nil, nil
			}
			return a, nil
		})
		return err
	}
	j.logger().Info("waiting for the app's version in flight", "app", j.req.AppID(), "busy", busy)
	wctx, cancel := context.WithTimeout(ctx, appBusyRecheck)
	defer cancel()
	w, err := j.w.assets.Apps.Watch(wctx, key, jetstream.UpdatesOnly())
	if err != nil {
		return clock.Sleep(ctx, appBusyRecheck/5)
	}
	defer func() { _ = w.Stop() }()
	select {
	case <-w.Updates():
	case <-wctx.Done():
	}
	return context.Cause(ctx)
}

// settleApp makes the ended job's outcome its app's, once.
func (j *job) settleApp(ctx context.Context) error {
	if j.st.AppVersion == 0 || j.w.assets.Apps == nil {
		return nil
	}
	key := jobs.AppKey(j.req.Tenant, j.st.App)
	newCode := false
	// From the app as bound: its record changes only by this job while
	// it holds it, so the write usually needs no read.
	app, err := jobs.UpdateAppAt(ctx, j.w.assets.Apps, key, &j.app, func(a *jobs.App) (*jobs.App, error) {
		prev := ""
		if a != nil && a.Claim != nil {
			prev = a.Claim.Code
		}
		if !jobs.SettleVersion(a, j.st, j.now()) {
			return nil, nil
		}
		// The first version's code is part of its deploy; a later
		// version's fresh one (the app's had expired) is upkeep.
		if newCode = a.Claim != nil && a.Claim.Code != prev && prev != ""; newCode {
			a.Calls.Claims++
		}
		return a, nil
	})
	if err == nil && app != nil && newCode {
		j.w.m.UpkeepCall("claim_code")
	}
	return err
}

// appDomain is the production domain of the app the job makes, "" without
// a platform suffix.
func (j *job) appDomain() string {
	if j.w.cfg.Apps.DomainSuffix == "" {
		return ""
	}
	return jobs.AppDomainLabel(j.req) + "." + j.w.cfg.Apps.DomainSuffix
}

// addDomain puts the app's domain on its new project.
func (j *job) addDomain(ctx context.Context) error {
	if j.st.Domain != "" {
		return nil
	}
	domain := j.appDomain()
	if domain == "" {
		return nil
	}
	if _, _, err := j.p.api.AddProjectDomain(ctx, j.st.ProjectID, domain); err != nil {
		return err
	}
	j.st.Domain = domain
	return nil
}

// errDomainTaken wraps the refusal of an app's domain for the job's
// error code.
func domainTaken(domain string, err error) error {
	return &StepError{Step: jobs.StepCreateProject, Code: "domain_taken",
		Err: fmt.Errorf("the domain %s belongs to another project of the team: %w", domain, err)}
}
