package vercelsim_test

import (
	"strings"
	"testing"

	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

const configID = "icfg_abc123"

func authorizeBody() map[string]any {
	return map[string]any{
		"integrationIdOrSlug":        "prisma",
		"productId":                  vercelsim.PrismaProductSlug,
		"billingPlanId":              "pro",
		"metadata":                   `{"region":"iad1"}`,
		"integrationConfigurationId": configID,
	}
}

func storeBody(name, authorizationID string) map[string]any {
	return map[string]any{
		"name":                       name,
		"integrationConfigurationId": configID,
		"integrationProductIdOrSlug": vercelsim.PrismaProductID,
		"billingPlanId":              "pro",
		"metadata":                   map[string]any{"region": "iad1"},
		"authorizationId":            authorizationID,
		"source":                     "marketplace",
	}
}

func authzID(t *testing.T, r response) string {
	t.Helper()
	return r.json(t)["authorization"].(map[string]any)["id"].(string)
}

// The authorization quirks: null, pending (then succeeded after the
// reads), requires_action and failed.
func TestAuthorizationQuirks(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{Quirks: vercelsim.Quirks{Authorization: vercelsim.AuthorizationNull}})
	r := b.do(t, "POST", "/v1/integrations/billing/authorization", authorizeBody())
	want(t, r, 200)
	if v, ok := r.json(t)["authorization"]; !ok || v != nil {
		t.Fatalf("null quirk answered %s", r.body)
	}
	b = setup(t, vercelsim.Config{Quirks: vercelsim.Quirks{Authorization: vercelsim.AuthorizationPending, PendingPolls: 2}})
	r = b.do(t, "POST", "/v1/integrations/billing/authorization", authorizeBody())
	a := r.json(t)["authorization"].(map[string]any)
	if a["status"] != "pending" {
		t.Fatalf("pending quirk answered %v", a)
	}
	for i, wantStatus := range []string{"pending", "succeeded", "succeeded"} {
		r = b.do(t, "GET", "/v1/integrations/billing/authorization/"+a["id"].(string), nil)
		if got := r.json(t)["status"]; got != wantStatus {
			t.Fatalf("read %d: status %v, want %s", i+1, got, wantStatus)
		}
	}
	for _, q := range []vercelsim.AuthorizationQuirk{vercelsim.AuthorizationRequiresAction, vercelsim.AuthorizationFailed} {
		b = setup(t, vercelsim.Config{Quirks: vercelsim.Quirks{Authorization: q}})
		r = b.do(t, "POST", "/v1/integrations/billing/authorization", authorizeBody())
		if got := r.json(t)["authorization"].(map[string]any)["status"]; got != string(q) {
			t.Fatalf("%s quirk answered %v", q, got)
		}
	}
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{})
	r := b.do(t, "POST", "/v1/integrations/billing/authorization", authorizeBody())
	want(t, r, 200)
	a := r.json(t)["authorization"].(map[string]any)
	if a["status"] != "succeeded" || a["integrationConfigurationId"] != configID || a["id"] == "" {
		t.Errorf("authorization = %v", a)
	}
	r = b.do(t, "GET", "/v1/integrations/billing/authorization/"+a["id"].(string), nil)
	want(t, r, 200)
	if r.json(t)["id"] != a["id"] {
		t.Errorf("GET authorization = %s (the authorization itself, as Vercel's CLI reads it)", r.body)
	}
	want(t, b.do(t, "GET", "/v1/integrations/billing/authorization/authz_nope", nil), 404)

	// metadata is a JSON string here; an object is a client bug.
	bad := authorizeBody()
	bad["metadata"] = map[string]any{"region": "iad1"}
	r = b.do(t, "POST", "/v1/integrations/billing/authorization", bad)
	want(t, r, 400)
	mustContain(t, string(r.body), "`metadata` should be string")

	bad = authorizeBody()
	bad["integrationConfigurationId"] = "cfg_1"
	want(t, b.do(t, "POST", "/v1/integrations/billing/authorization", bad), 400)

	if got := b.sim.Authorizations(); len(got) != 1 || got[0].Metadata != `{"region":"iad1"}` {
		t.Errorf("Authorizations = %+v", got)
	}
}

func TestStoresAndConnections(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{})
	p := b.createProject(t, "app")
	projectID := p["id"].(string)
	authz := authzID(t, b.do(t, "POST", "/v1/integrations/billing/authorization", authorizeBody()))

	r := b.do(t, "POST", "/v1/storage/stores/integration", storeBody("db-app", authz))
	want(t, r, 200)
	st := r.json(t)["store"].(map[string]any)
	storeID := st["id"].(string)
	if !strings.HasPrefix(storeID, "store_") || st["name"] != "db-app" || st["status"] != "available" {
		t.Errorf("store = %v", st)
	}

	// Vercel allows two stores of one name: the simulator does too, and
	// counts them.
	want(t, b.do(t, "POST", "/v1/storage/stores/integration", storeBody("db-app", authz)), 200)
	if got := b.sim.Stats().StoresCreated["db-app"]; got != 2 {
		t.Errorf("StoresCreated[db-app] = %d, want 2", got)
	}

	// Store metadata is an object here; a string is a client bug.
	bad := storeBody("db-x", authz)
	bad["metadata"] = `{"region":"iad1"}`
	want(t, b.do(t, "POST", "/v1/storage/stores/integration", bad), 400)
	want(t, b.do(t, "POST", "/v1/storage/stores/integration", storeBody("db-x", "authz_unknown")), 404)

	r = b.do(t, "GET", "/v1/installations/"+configID+"/resources", nil)
	want(t, r, 200)
	res := r.json(t)["resources"].([]any)
	if len(res) != 2 {
		t.Fatalf("resources = %v", res)
	}
	first := res[0].(map[string]any)
	if first["internalId"] != storeID || first["name"] != "db-app" || first["productId"] != vercelsim.PrismaProductID || first["partnerId"] == "" {
		t.Errorf("resource = %v", first)
	}
	r = b.do(t, "GET", "/v1/installations/icfg_other/resources", nil)
	want(t, r, 200)
	if n := len(r.json(t)["resources"].([]any)); n != 0 {
		t.Errorf("another configuration lists %d resources", n)
	}

	documented := "/v1/integrations/installations/" + configID + "/resources/" + storeID + "/connections"
	guide := "/v1/integrations/installations/" + configID + "/products/" + vercelsim.PrismaProductSlug + "/resources/" + storeID + "/connections"
	r = b.do(t, "POST", documented, map[string]any{"projectId": projectID})
	want(t, r, 201)
	if len(r.body) != 0 {
		t.Errorf("201 with body %q", r.body)
	}
	for _, path := range []string{documented, guide} {
		r = b.do(t, "POST", path, map[string]any{"projectId": projectID})
		want(t, r, 409)
		mustContain(t, string(r.body), "already connected")
	}
	want(t, b.do(t, "POST", documented, map[string]any{"projectId": "prj_nope"}), 404)
	want(t, b.do(t, "POST", documented, map[string]any{}), 400)
	want(t, b.do(t, "POST", "/v1/integrations/installations/icfg_other/resources/"+storeID+"/connections",
		map[string]any{"projectId": projectID}), 404)
	want(t, b.do(t, "POST", "/v1/integrations/installations/"+configID+"/products/iap_other/resources/"+storeID+"/connections",
		map[string]any{"projectId": projectID}), 404)

	got, _ := b.sim.Project("app")
	if strings.Join(got.Env, ",") != "DATABASE_URL,POSTGRES_URL,PRISMA_DATABASE_URL" {
		t.Errorf("project env after connect = %v", got.Env)
	}
	// The guide's path form with the product id connects too.
	p2 := b.createProject(t, "app2")
	want(t, b.do(t, "POST", guide, map[string]any{"projectId": p2["id"]}), 201)
	if n := len(b.sim.Connections()); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}

	want(t, b.do(t, "DELETE", "/v1/storage/stores/integration/"+storeID, nil), 204)
	want(t, b.do(t, "DELETE", "/v1/storage/stores/integration/"+storeID, nil), 404)
	if n := len(b.sim.Connections()); n != 0 {
		t.Errorf("%d connections after the store's delete", n)
	}
	if got, _ := b.sim.Project("app"); len(got.Env) != 0 {
		t.Errorf("project env after the store's delete = %v", got.Env)
	}
	if n := len(b.sim.Stores()); n != 1 {
		t.Errorf("%d stores left, want 1", n)
	}
}
