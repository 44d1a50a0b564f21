package vercel_test

import (
	"errors"
	"testing"

	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// The calls an app's life needs, against the simulator over HTTP:
// domains, caps, and a claim accepted by another team.

func TestProjectDomainsAreAddedOnce(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, vercelsim.Config{})
	ctx := t.Context()
	p, _, err := b.client.CreateProject(ctx, vercel.CreateProjectRequest{Name: "site"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second finds it there already
		d, _, err := b.client.AddProjectDomain(ctx, p.ID, "site.apps.example")
		if err != nil || d.Name != "site.apps.example" || d.ProjectID != p.ID {
			t.Fatalf("AddProjectDomain = %+v, %v", d, err)
		}
	}
	other, _, err := b.client.CreateProject(ctx, vercel.CreateProjectRequest{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = b.client.AddProjectDomain(ctx, other.ID, "site.apps.example")
	var taken *vercel.DomainTakenError
	if !errors.As(err, &taken) || vercel.Classify(err).Class != vercel.Permanent {
		t.Errorf("another project's domain: %v (%T), want a permanent DomainTakenError", err, err)
	}
}

func TestCapsArePermanent(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, vercelsim.Config{MaxProjects: 1})
	ctx := t.Context()
	if _, _, err := b.client.CreateProject(ctx, vercel.CreateProjectRequest{Name: "one"}); err != nil {
		t.Fatal(err)
	}
	_, _, err := b.client.CreateProject(ctx, vercel.CreateProjectRequest{Name: "two"})
	var ce *vercel.CapError
	if !errors.As(err, &ce) || ce.Resource != vercel.CapProjects {
		t.Fatalf("past the cap: %v (%T), want a CapError for projects", err, err)
	}
	if d := vercel.Classify(err); d.Class != vercel.Permanent || d.Reason != vercel.ReasonCapReached {
		t.Errorf("Classify = %+v, want permanent cap_reached", d)
	}
}

func TestAcceptedTransferTakesTheProjectAway(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, vercelsim.Config{})
	ctx := t.Context()
	p, _, err := b.client.CreateProject(ctx, vercel.CreateProjectRequest{Name: "claimable"})
	if err != nil {
		t.Fatal(err)
	}
	tc, _, err := b.client.CreateTransferRequest(ctx, p.ID, vercel.TransferRequest{})
	if err != nil {
		t.Fatal(err)
	}
	user, err := vercel.New(vercel.WithBaseURL(b.url), vercel.WithToken(simToken), vercel.WithTeamID("team_claimer"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := user.AcceptTransferRequest(ctx, tc.Code, vercel.AcceptTransfer{}); err != nil {
		t.Fatal(err)
	}
	_, _, err = b.client.GetProject(ctx, p.ID)
	var apiErr *vercel.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("the giving team reads the claimed project: %v, want 404", err)
	}
	if got, _, err := user.GetProject(ctx, p.ID); err != nil || got.ID != p.ID {
		t.Errorf("the claiming team reads %+v, %v", got, err)
	}
}
