package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// An app's life, in one place. An app is what a request's App names (or
// the request itself, without one): a Vercel project and its database
// that live on after the deploy, get new versions, and end claimed by
// their user or expired. Its record lives in the DEPLOY_APPS bucket under
// <tenant>.<app>; every change below is a compare-and-set on the revision
// the writer read (UpdateApp), so a version, a claim and an expiry never
// both win:
//
//	(none)|failed ─BindVersion─▶ creating (busy: the first version)
//	creating ─SettleVersion ok─▶ live        creating ─SettleVersion not ok─▶ failed
//	live ─BindVersion─▶ live (busy) ─SettleVersion─▶ live (a new version, or the old one kept)
//	live ─MarkClaimed─▶ claimed (once; a claimed app is never deleted)
//	live (not busy, past its TTL) ─StartExpiry─▶ expiring ─FinishExpiry─▶ expired
//	expiring (project still there) ─MarkClaimed─▶ claimed
//
// A version in flight holds the app (Busy): a second version waits for it,
// and expiry never starts under it. A claimed, expiring or expired app
// refuses new versions with a typed reason (ErrAppClaimed, ErrAppExpired).

// AppState is where an app stands.
type AppState string

// The states of an app.
const (
	AppCreating AppState = "creating"
	AppLive     AppState = "live"
	AppClaimed  AppState = "claimed"
	AppExpiring AppState = "expiring"
	AppExpired  AppState = "expired"
	AppFailed   AppState = "failed"
)

// AppStates lists every state, for metrics and listings.
func AppStates() []AppState {
	return []AppState{AppCreating, AppLive, AppClaimed, AppExpiring, AppExpired, AppFailed}
}

// Holds reports whether an app in state s holds a project and a database
// in the team (claimed ones left it; expired and failed ones were
// deleted).
func (s AppState) Holds() bool { return s == AppCreating || s == AppLive || s == AppExpiring }

// appVersion is the schema of App.
const appVersion = 1

// App is an app's record in BucketApps.
type App struct {
	Version int      `json:"version"`
	Tenant  string   `json:"tenant"`
	ID      string   `json:"id"`
	State   AppState `json:"state"`
	// Team is the Vercel team the app's project is in.
	Team string `json:"team,omitempty"`

	ProjectID   string `json:"projectId,omitempty"`
	ProjectName string `json:"projectName,omitempty"`
	StoreID     string `json:"storeId,omitempty"`
	StoreName   string `json:"storeName,omitempty"`
	// Domain is the app's production domain under the platform's suffix,
	// when the workers have one.
	Domain string `json:"domain,omitempty"`
	// URL is the live URL of the last version.
	URL string `json:"url,omitempty"`

	// Versions counts the versions deployed; LastRequest is the request
	// of the last one, FirstRequest the one that created the app.
	Versions     int    `json:"versions"`
	FirstRequest string `json:"firstRequest,omitempty"`
	LastRequest  string `json:"lastRequest,omitempty"`
	// Busy is the request whose version is in flight; BusySince when it
	// took the app.
	Busy      string    `json:"busy,omitempty"`
	BusySince time.Time `json:"busySince,omitzero"`

	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	LastVersionAt time.Time `json:"lastVersionAt,omitzero"`

	// Claim is the app's current claim code.
	Claim *AppClaim `json:"claim,omitempty"`
	// ClaimedAt, ClaimedVia (ClaimedViaCallback or ClaimedViaCheck) and
	// Database (DatabaseMoved, DatabaseStayed, or "" when unknown) say
	// how the claim was learned and what became of the database.
	ClaimedAt  time.Time `json:"claimedAt,omitzero"`
	ClaimedVia string    `json:"claimedVia,omitempty"`
	Database   string    `json:"database,omitempty"`
	// CheckedAt is when the workers last asked Vercel whether the project
	// is still the team's.
	CheckedAt time.Time `json:"checkedAt,omitzero"`

	// Expiry follows the deletion of an expiring app.
	Expiry    *AppExpiry `json:"expiry,omitempty"`
	ExpiredAt time.Time  `json:"expiredAt,omitzero"`
	// Announced is set once the claimed or expired event is published.
	Announced bool `json:"announced,omitempty"`

	// Calls counts the API calls spent on the app after its versions:
	// claim codes, claim checks, and expiry.
	Calls AppCalls `json:"calls"`
}

// AppClaim is a claim code and its life.
type AppClaim struct {
	Code      string    `json:"code"`
	IssuedAt  time.Time `json:"issuedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// AppExpiry is an expiry in progress: its owner (a worker) and what is
// deleted already.
type AppExpiry struct {
	Owner string    `json:"owner"`
	Since time.Time `json:"since"`
	// DeletingProject is recorded before the project's deletion is sent:
	// after it, a project gone from the team was deleted by the expiry
	// (whose answer a crash may have lost), not claimed.
	DeletingProject bool `json:"deletingProject,omitempty"`
	ProjectDeleted  bool `json:"projectDeleted,omitempty"`
	StoreDeleted    bool `json:"storeDeleted,omitempty"`
}

// AppCalls counts API calls spent on an app's upkeep, beyond its
// versions' deploys: claim codes after the first (refreshes, and a later
// version's fresh code when the app's had expired), claim checks (with
// the store listing that tells where a claimed app's database went), and
// the expiry's reads and deletions.
type AppCalls struct {
	Claims int `json:"claims,omitempty"`
	Checks int `json:"checks,omitempty"`
	Expiry int `json:"expiry,omitempty"`
}

// How a claim was learned.
const (
	ClaimedViaCallback = "callback"
	ClaimedViaCheck    = "check"
)

// What became of a claimed app's database.
const (
	DatabaseMoved  = "moved"
	DatabaseStayed = "stayed"
)

// ClaimCodeLife is how long Vercel keeps a claim code valid.
const ClaimCodeLife = 24 * time.Hour

// ClaimReuseMargin is how much life a claim code must have left to be
// handed out again (with a new version, or by RefreshClaim) instead of a
// fresh one: a user given a link must have time to open it.
const ClaimReuseMargin = time.Hour

// ClaimValid reports whether the app's claim code can still be handed out
// at now.
func (a *App) ClaimValid(now time.Time) bool {
	return a.Claim != nil && a.Claim.Code != "" && a.Claim.ExpiresAt.Sub(now) > ClaimReuseMargin
}

// AppKey is an app's key in BucketApps.
func AppKey(tenant, app string) string { return tenant + "." + app }

// Errors of BindVersion: why an app takes no new version now.
var (
	// ErrAppClaimed: the app's user took the project over.
	ErrAppClaimed = errors.New("the app was claimed by its user: its project left the team, so no new version can be deployed into it")
	// ErrAppExpired: the app went unclaimed past its TTL and is deleted
	// (or being deleted).
	ErrAppExpired = errors.New("the app expired unclaimed and was deleted: submit it under a new app id")
)

// Codes of the events that refuse a version.
const (
	CodeAppClaimed = "app_claimed"
	CodeAppExpired = "app_expired"
)

// AppBusyError says which version holds the app.
type AppBusyError struct{ Request string }

func (e *AppBusyError) Error() string {
	return fmt.Sprintf("version %s of the app is in flight", e.Request)
}

// Binding is what BindVersion decided: the version's number and whether
// it creates the app's project and database.
type Binding struct {
	Version int
	First   bool
}

// BindVersion takes app a (nil: none yet) for request req's version at
// now, or says why not: *AppBusyError (wait for it), ErrAppClaimed,
// ErrAppExpired. Binding again by the same request returns the same.
func BindVersion(a *App, req *Request, team string, now time.Time) (*App, Binding, error) {
	if a == nil || a.State == AppFailed {
		n := &App{Version: appVersion, Tenant: req.Tenant, ID: req.AppID(), Team: team, CreatedAt: now}
		if a != nil {
			n.CreatedAt, n.Calls, n.Versions = a.CreatedAt, a.Calls, a.Versions
		}
		n.State, n.Busy, n.BusySince, n.FirstRequest, n.UpdatedAt = AppCreating, req.ID, now, req.ID, now
		return n, Binding{Version: n.Versions + 1, First: true}, nil
	}
	switch a.State {
	case AppClaimed:
		return a, Binding{}, ErrAppClaimed
	case AppExpiring, AppExpired:
		return a, Binding{}, ErrAppExpired
	}
	if a.Busy != "" && a.Busy != req.ID {
		return a, Binding{}, &AppBusyError{Request: a.Busy}
	}
	if a.Busy != req.ID {
		a.Busy, a.BusySince, a.UpdatedAt = req.ID, now, now
	}
	return a, Binding{Version: a.Versions + 1, First: a.State == AppCreating}, nil
}

// SettleVersion records how the version of the finished job st ended, if
// it still holds the app; it reports whether a changed. A success makes
// the version the app's latest; a failed first version leaves the app
// failed (its resources were cleaned up, or kept for inspection), a
// failed later one leaves the app as it was.
func SettleVersion(a *App, st *JobState, now time.Time) bool {
	if a == nil || a.Busy != st.ID || !st.Done() {
		return false
	}
	a.Busy, a.BusySince, a.UpdatedAt = "", time.Time{}, now
	if st.Status != StatusSucceeded {
		if a.State == AppCreating {
			a.State = AppFailed
			a.ProjectID, a.ProjectName, a.StoreID, a.StoreName, a.Domain = "", "", "", "", ""
		}
		return true
	}
	if a.State != AppClaimed {
		// A claim that came while the version was in flight stands.
		a.State = AppLive
	}
	a.Versions, a.LastRequest, a.LastVersionAt = st.AppVersion, st.ID, now
	a.ProjectID, a.ProjectName, a.StoreID, a.StoreName = st.ProjectID, st.ProjectName, st.StoreID, st.StoreName
	a.Domain, a.URL = st.Domain, st.PublicURL()
	if st.ClaimCode != "" && (a.Claim == nil || a.Claim.Code != st.ClaimCode) {
		issued := st.ClaimIssuedAt
		if issued.IsZero() {
			issued = now
		}
		a.Claim = &AppClaim{Code: st.ClaimCode, IssuedAt: issued, ExpiresAt: issued.Add(ClaimCodeLife)}
	}
	return true
}

// MarkClaimed records that the app's user took its project over, learned
// via (ClaimedViaCallback, ClaimedViaCheck), with what became of the
// database (DatabaseMoved, DatabaseStayed, ""). It reports false, with no
// change, for an app that cannot be claimed any more: claimed already,
// expired, or expiring past the deletion of its project.
func MarkClaimed(a *App, via, database string, now time.Time) bool {
	switch {
	case a == nil, a.State == AppClaimed, a.State == AppExpired, a.State == AppFailed,
		a.State == AppExpiring && a.Expiry != nil && (a.Expiry.ProjectDeleted || a.Expiry.DeletingProject):
		return false
	}
	a.State, a.ClaimedAt, a.ClaimedVia, a.Database, a.UpdatedAt = AppClaimed, now, via, database, now
	a.Expiry, a.Announced = nil, false
	return true
}

// Expires reports whether a live app is due for expiry at now under ttl:
// unclaimed, no version in flight, and its last version older than ttl.
func (a *App) Expires(ttl time.Duration, now time.Time) bool {
	return ttl > 0 && a.State == AppLive && a.Busy == "" && !a.LastVersionAt.IsZero() && now.Sub(a.LastVersionAt) >= ttl
}

// StartExpiry makes owner the one deleting the app, if it is due (see
// Expires) or its expiry's owner let it lapse (no word for lease). It
// reports whether owner now has it.
func StartExpiry(a *App, owner string, ttl, lease time.Duration, now time.Time) bool {
	switch {
	case a.Expires(ttl, now):
		a.State, a.Expiry = AppExpiring, &AppExpiry{Owner: owner, Since: now}
	case a.State == AppExpiring && a.Expiry != nil && (a.Expiry.Owner == owner || now.Sub(a.Expiry.Since) > lease):
		a.Expiry.Owner, a.Expiry.Since = owner, now
	default:
		return false
	}
	a.UpdatedAt = now
	return true
}

// FinishExpiry records the expired app, its resources gone.
func FinishExpiry(a *App, now time.Time) {
	a.State, a.ExpiredAt, a.UpdatedAt, a.Announced = AppExpired, now, now, false
	a.Busy = ""
}

// ErrAppContended is an app record that kept changing under UpdateApp.
var ErrAppContended = errors.New("the app's record kept changing; try again")

// UpdateApp applies change to the app stored under key (nil when there
// is none) and writes the result by compare-and-set, reading again and
// retrying when another writer came first. change returns the app to
// write, or nil to write nothing; its error stops the update and is
// returned. The app as stored after the update is returned.
func UpdateApp(ctx context.Context, kv jetstream.KeyValue, key string, change func(a *App) (*App, error)) (*App, error) {
	return UpdateAppAt(ctx, kv, key, nil, change)
}

// AppRef is an app as its holder last wrote it, with the revision: the
// next change from it is written without reading first (one round trip
// instead of two), and only a write lost to another writer reads.
// A zero AppRef with Guessed set stands for an app believed not to
// exist yet, which is created without reading.
type AppRef struct {
	App     *App
	Rev     uint64
	Guessed bool
}

// UpdateAppAt is UpdateApp starting from ref, when it is not nil and
// Guessed; ref is updated to what was written.
func UpdateAppAt(ctx context.Context, kv jetstream.KeyValue, key string, ref *AppRef, change func(a *App) (*App, error)) (*App, error) {
	for i := range 20 {
		var cur *App
		var rev uint64
		if i == 0 && ref != nil && ref.Guessed {
			cur, rev = ref.App.clone(), ref.Rev
		} else {
			e, err := kv.Get(ctx, key)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
			case err != nil:
				return nil, fmt.Errorf("read app %s: %w", key, err)
			default:
				cur, rev = new(App), e.Revision()
				if err := json.Unmarshal(e.Value(), cur); err != nil {
					return nil, fmt.Errorf("decode app %s: %w", key, err)
				}
			}
		}
		next, cerr := change(cur)
		if next == nil || cerr != nil {
			if i == 0 && ref != nil && ref.Guessed && cerr == nil {
				continue // nothing to write from a guess: read what is stored
			}
			return cur, cerr
		}
		data, err := json.Marshal(next)
		if err != nil {
			return nil, err
		}
		var nrev uint64
		if rev == 0 {
			nrev, err = kv.Create(ctx, key, data)
		} else {
			nrev, err = kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			if ref != nil {
				*ref = AppRef{App: next.clone(), Rev: nrev, Guessed: true}
			}
			return next, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, fmt.Errorf("write app %s: %w", key, err)
		}
	}
	return nil, ErrAppContended
}

// clone copies a, its claim and expiry too; nil stays nil.
func (a *App) clone() *App {
	if a == nil {
		return nil
	}
	c := *a
	if a.Claim != nil {
		claim := *a.Claim
		c.Claim = &claim
	}
	if a.Expiry != nil {
		exp := *a.Expiry
		c.Expiry = &exp
	}
	return &c
}

// ReadApp reads an app's record; nil when there is none.
func ReadApp(ctx context.Context, kv jetstream.KeyValue, key string) (*App, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a := new(App)
	if err := json.Unmarshal(e.Value(), a); err != nil {
		return nil, fmt.Errorf("decode app %s: %w", key, err)
	}
	return a, nil
}

// Event is the app's claimed or expired event (typ), published on the
// events subject of the app's id with a dedup id of its own, so that
// publishing it again after a crash leaves one copy.
func (a *App) Event(typ EventType, at time.Time) Event {
	data := EventData{RequestID: a.LastRequest, Tenant: a.Tenant, App: a.ID, AppVersion: a.Versions,
		ProjectID: a.ProjectID, ProjectName: a.ProjectName, StoreID: a.StoreID, URL: a.URL}
	switch typ {
	case TypeClaimed:
		data.ClaimedVia, data.Database = a.ClaimedVia, a.Database
	case TypeExpired:
		data.Cleaned = []string{"project", "database"}
	}
	ev := newEvent(typ, a.Tenant+".app."+a.ID+"."+typ.Short(), at, data)
	ev.Subject = a.ID
	return ev
}
