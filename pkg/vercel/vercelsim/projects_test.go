package vercelsim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func TestCreateProject(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{TeamID: "team_x"})

	r := b.do(t, "POST", "/v11/projects?teamId=team_x", map[string]any{
		"name": "shop-1", "framework": "nextjs",
		"environmentVariables": []map[string]any{
			{"key": "API_KEY", "value": "s3cret", "target": []string{"production", "preview"}, "type": "encrypted"},
			{"key": "MODE", "value": "demo", "target": "production", "type": "plain"},
		},
	})
	want(t, r, 200)
	p := r.json(t)
	id, _ := p["id"].(string)
	if !strings.HasPrefix(id, "prj_") || p["name"] != "shop-1" || p["accountId"] != "team_x" || p["framework"] != "nextjs" {
		t.Errorf("project = %v", p)
	}
	env, _ := p["env"].([]any)
	if len(env) != 2 {
		t.Fatalf("env = %v", env)
	}
	if v := env[0].(map[string]any)["value"]; v == "s3cret" {
		t.Error("an encrypted value is shown in clear")
	}
	if v := env[1].(map[string]any)["value"]; v != "demo" {
		t.Errorf("plain value = %v", v)
	}

	// The v10 path (Prisma's guide) shares the state and the 409.
	r = b.do(t, "POST", "/v10/projects?teamId=team_x", map[string]any{"name": "shop-1"})
	want(t, r, 409)
	if r.errorCode(t) != "conflict" {
		t.Errorf("409 code = %q", r.errorCode(t))
	}

	for _, path := range []string{"/v9/projects/" + id, "/v9/projects/shop-1"} {
		r = b.do(t, "GET", path+"?teamId=team_x", nil)
		want(t, r, 200)
		if r.json(t)["id"] != id {
			t.Errorf("GET %s id = %v", path, r.json(t)["id"])
		}
	}
	r = b.do(t, "GET", "/v9/projects/nope?teamId=team_x", nil)
	want(t, r, 404)
	if r.errorCode(t) != "not_found" {
		t.Errorf("404 code = %q", r.errorCode(t))
	}

	if got := b.sim.Stats().ProjectsCreated["shop-1"]; got != 1 {
		t.Errorf("ProjectsCreated[shop-1] = %d", got)
	}
}

func TestProjectNameRules(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{})
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"my.app_v2-x", true},
		{strings.Repeat("a", 100), true},
		{strings.Repeat("a", 101), false},
		{"", false},
		{"Upper", false},
		{"has space", false},
		{"a---b", false},
		{"a--b", true},
		{"slash/x", false},
		{"ünïcode", false},
	} {
		r := b.do(t, "POST", "/v11/projects", map[string]any{"name": tc.name})
		switch {
		case tc.ok && r.status != 200:
			t.Errorf("%q: status %d, want 200: %s", tc.name, r.status, r.body)
		case !tc.ok && (r.status != 400 || r.errorCode(t) != "bad_request"):
			t.Errorf("%q: status %d %s, want 400 bad_request", tc.name, r.status, r.body)
		}
	}
}

func TestCreateProjectRejectsBadBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{})
	for _, tc := range []struct {
		desc string
		body any
		msg  string
	}{
		{"unknown member", map[string]any{"name": "a", "environment_variables": []any{}}, "additional property `environment_variables`"},
		{"unknown framework", map[string]any{"name": "a", "framework": "rails-on-mars"}, "framework"},
		{"env without target", map[string]any{"name": "a", "environmentVariables": []any{map[string]any{"key": "K", "value": "v"}}}, "environmentVariables[0]"},
		{"env bad target", map[string]any{"name": "a", "environmentVariables": []any{map[string]any{"key": "K", "value": "v", "target": "prod"}}}, "target"},
		{"name not a string", map[string]any{"name": 42}, "`name` should be string"},
		{"not JSON", []byte("{"), "Invalid JSON"},
	} {
		r := b.do(t, "POST", "/v11/projects", tc.body)
		if r.status != 400 {
			t.Errorf("%s: status %d, want 400", tc.desc, r.status)
			continue
		}
		msg := r.json(t)["error"].(map[string]any)["message"].(string)
		mustContain(t, msg, tc.msg)
	}
	if n := len(b.sim.Projects()); n != 0 {
		t.Errorf("%d projects created by bad bodies", n)
	}
}

func TestDeleteProjectCascades(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{})
	depID := b.deploy(t, "doomed", source("x"))
	p, _ := b.sim.Project("doomed")

	a := b.do(t, "POST", "/v1/integrations/billing/authorization", authorizeBody())
	want(t, a, 200)
	st := b.do(t, "POST", "/v1/storage/stores/integration", storeBody("db-doomed", authzID(t, a)))
	want(t, st, 200)
	storeID := st.json(t)["store"].(map[string]any)["id"].(string)
	want(t, b.do(t, "POST", "/v1/integrations/installations/"+configID+"/resources/"+storeID+"/connections",
		map[string]any{"projectId": p.ID}), 201)
	want(t, b.do(t, "POST", "/projects/doomed/transfer-request", nil), 200)

	want(t, b.do(t, "DELETE", "/v9/projects/doomed", nil), 204)

	want(t, b.do(t, "GET", "/v9/projects/"+p.ID, nil), 404)
	want(t, b.do(t, "GET", "/v13/deployments/"+depID, nil), 404)
	want(t, b.do(t, "DELETE", "/v9/projects/doomed", nil), 404)
	if n := len(b.sim.Deployments()); n != 0 {
		t.Errorf("%d deployments left", n)
	}
	if n := len(b.sim.Connections()); n != 0 {
		t.Errorf("%d connections left", n)
	}
	if n := len(b.sim.TransferCodes()); n != 0 {
		t.Errorf("%d transfer codes left", n)
	}
	if stores := b.sim.Stores(); len(stores) != 1 || len(stores[0].Projects) != 0 {
		t.Errorf("stores = %+v, want the store kept, unconnected", stores)
	}
	// The name is free again.
	b.createProject(t, "doomed")
	if got := b.sim.Stats().ProjectsCreated["doomed"]; got != 2 {
		t.Errorf("ProjectsCreated[doomed] = %d, want 2", got)
	}
}

func TestTransferRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{})
	p := b.createProject(t, "claimable")
	var codes []string
	for _, path := range []string{"/projects/claimable/transfer-request", "/v9/projects/" + p["id"].(string) + "/transfer-request"} {
		r := b.do(t, "POST", path, map[string]any{"callbackUrl": "https://example.com/cb"})
		want(t, r, 200)
		code, _ := r.json(t)["code"].(string)
		if len(code) != 36 || strings.Count(code, "-") != 4 {
			t.Errorf("code %q is not a UUID", code)
		}
		codes = append(codes, code)
	}
	if codes[0] == codes[1] {
		t.Error("two transfer requests gave the same code")
	}
	got := b.sim.TransferCodes()
	if len(got) != 2 || got[0].Code != codes[0] || got[0].ProjectID != p["id"] || got[0].CallbackURL != "https://example.com/cb" {
		t.Errorf("TransferCodes = %+v", got)
	}
	if got[0].ExpiresAt.Sub(got[0].CreatedAt).Hours() != 24 {
		t.Errorf("code lives %v, want 24h", got[0].ExpiresAt.Sub(got[0].CreatedAt))
	}
	// Without a body, too.
	want(t, b.do(t, "POST", "/projects/claimable/transfer-request", nil), 200)
	want(t, b.do(t, "POST", "/projects/unknown/transfer-request", nil), 404)

	b.clock.Advance(25 * time.Hour)
	if n := len(b.sim.TransferCodes()); n != 0 {
		t.Errorf("%d codes still valid after 25h", n)
	}
}
