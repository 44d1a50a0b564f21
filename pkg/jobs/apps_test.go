package jobs

import (
	"errors"
	"testing"
	"time"
)

func TestAppTransitions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r1 := &Request{ID: "r1", Tenant: "acme", App: "site"}
	a, b, err := BindVersion(nil, r1, "team_a", now)
	if err != nil || !b.First || b.Version != 1 || a.State != AppCreating || a.Busy != "r1" {
		t.Fatalf("bind a new app: %+v %+v %v", a, b, err)
	}
	// Bound again by the same request (a redelivery): the same answer.
	if _, b2, err := BindVersion(a, r1, "team_a", now); err != nil || b2 != b {
		t.Fatalf("bind again: %+v %v", b2, err)
	}
	r2 := &Request{ID: "r2", Tenant: "acme", App: "site"}
	var busy *AppBusyError
	if _, _, err := BindVersion(a, r2, "team_a", now); !errors.As(err, &busy) || busy.Request != "r1" {
		t.Fatalf("a second version while the first is in flight: %v", err)
	}
	st := &JobState{ID: "r1", Tenant: "acme", Status: StatusSucceeded, AppVersion: 1, ProjectID: "prj_1", StoreID: "store_1", ClaimCode: "c1", ClaimIssuedAt: now}
	if !SettleVersion(a, st, now) || a.State != AppLive || a.Busy != "" || a.Versions != 1 || a.Claim.Code != "c1" {
		t.Fatalf("settle the first version: %+v", a)
	}
	if SettleVersion(a, st, now) {
		t.Error("a version settled twice")
	}
	if a.Expires(time.Hour, now.Add(59*time.Minute)) || !a.Expires(time.Hour, now.Add(time.Hour)) || a.Expires(0, now.Add(1000*time.Hour)) {
		t.Error("Expires: due only past the TTL, never with TTL 0")
	}
	// A claim during a later version stands when that version settles.
	if _, b, err := BindVersion(a, r2, "team_a", now); err != nil || b.First || b.Version != 2 {
		t.Fatalf("bind the second version: %+v %v", b, err)
	}
	if StartExpiry(a, "w1", time.Hour, time.Minute, now.Add(2*time.Hour)) {
		t.Error("expiry started under a version in flight")
	}
	if !MarkClaimed(a, ClaimedViaCallback, DatabaseMoved, now) || MarkClaimed(a, ClaimedViaCheck, "", now) {
		t.Fatal("a claim is marked once")
	}
	if !SettleVersion(a, &JobState{ID: "r2", Tenant: "acme", Status: StatusSucceeded, AppVersion: 2}, now) || a.State != AppClaimed || a.Busy != "" {
		t.Fatalf("the version settled over the claim: %+v", a)
	}
	if _, _, err := BindVersion(a, &Request{ID: "r3", Tenant: "acme", App: "site"}, "team_a", now); !errors.Is(err, ErrAppClaimed) {
		t.Errorf("a version of a claimed app: %v", err)
	}
	// Expiry: started once, taken over only after the lease, and a claim
	// no longer counts once the project's deletion began.
	e := &App{State: AppLive, LastVersionAt: now}
	if !StartExpiry(e, "w1", time.Hour, time.Minute, now.Add(time.Hour)) || StartExpiry(e, "w2", time.Hour, time.Minute, now.Add(time.Hour+30*time.Second)) {
		t.Fatal("expiry taken by two owners within the lease")
	}
	if !StartExpiry(e, "w2", time.Hour, time.Minute, now.Add(time.Hour+2*time.Minute)) || e.Expiry.Owner != "w2" {
		t.Fatal("a lapsed expiry not taken over")
	}
	e.Expiry.DeletingProject = true
	if MarkClaimed(e, ClaimedViaCheck, "", now) {
		t.Error("an app whose project is being deleted marked claimed")
	}
	FinishExpiry(e, now)
	if _, _, err := BindVersion(e, r1, "team_a", now); !errors.Is(err, ErrAppExpired) {
		t.Errorf("a version of an expired app: %v", err)
	}
	// A failed first version leaves the app failed; the next starts over.
	f, _, _ := BindVersion(nil, r1, "team_a", now)
	SettleVersion(f, &JobState{ID: "r1", Tenant: "acme", Status: StatusFailed, AppVersion: 1, ProjectID: "prj_x"}, now)
	if f.State != AppFailed || f.ProjectID != "" {
		t.Fatalf("failed first version: %+v", f)
	}
	if g, b, err := BindVersion(f, r2, "team_a", now); err != nil || !b.First || g.State != AppCreating || g.FirstRequest != "r2" {
		t.Fatalf("a version after a failed first: %+v %+v %v", g, b, err)
	}
}
