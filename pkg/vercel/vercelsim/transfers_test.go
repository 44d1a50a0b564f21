package vercelsim_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// connectedApp makes a project with a connected store and returns their
// ids.
func connectedApp(t *testing.T, b *bundle, name string) (projectID, storeID string) {
	t.Helper()
	projectID = b.createProject(t, name)["id"].(string)
	authz := authzID(t, b.do(t, "POST", "/v1/integrations/billing/authorization", authorizeBody()))
	r := b.do(t, "POST", "/v1/storage/stores/integration", storeBody("db-"+name, authz))
	want(t, r, 200)
	storeID = r.json(t)["store"].(map[string]any)["id"].(string)
	want(t, b.do(t, "POST", "/v1/integrations/installations/"+configID+"/resources/"+storeID+"/connections",
		map[string]any{"projectId": projectID}), 201)
	return projectID, storeID
}

func TestAcceptedTransferMovesTheProjectAndCallsBack(t *testing.T) {
	t.Parallel()
	type callback struct {
		body []byte
		sig  string
	}
	got := make(chan callback, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- callback{body, r.Header.Get(vercelsim.CallbackSignatureHeader)}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	b := setup(t, vercelsim.Config{})
	projectID, storeID := connectedApp(t, b, "app")

	r := b.do(t, "POST", "/v9/projects/"+projectID+"/transfer-request",
		map[string]any{"callbackUrl": hook.URL + "/claimed", "callbackSecret": "s3cret"})
	want(t, r, 200)
	code := r.json(t)["code"].(string)

	r = b.do(t, "PUT", "/projects/transfer-request/"+code+"?teamId=team_user", map[string]any{})
	want(t, r, 202)
	ans := r.json(t)
	if ids, _ := ans["transferredStoreIds"].([]any); len(ids) != 1 || ids[0] != storeID {
		t.Errorf("transferredStoreIds = %v, want [%s]", ans["transferredStoreIds"], storeID)
	}
	// The project left the team: its token no longer finds it, the new
	// team's does, and the store went along.
	want(t, b.do(t, "GET", "/v9/projects/"+projectID, nil), 404)
	want(t, b.do(t, "GET", "/v9/projects/"+projectID+"?teamId=team_user", nil), 200)
	want(t, b.do(t, "DELETE", "/v1/storage/stores/integration/"+storeID, nil), 404)
	// Its name is free in the old team again.
	want(t, b.do(t, "POST", "/v11/projects", map[string]any{"name": "app"}), 200)
	// The code is spent.
	want(t, b.do(t, "PUT", "/projects/transfer-request/"+code+"?teamId=team_user", map[string]any{}), 404)

	select {
	case cb := <-got:
		mac := hmac.New(sha256.New, []byte("s3cret"))
		mac.Write(cb.body)
		if want := hex.EncodeToString(mac.Sum(nil)); cb.sig != want {
			t.Errorf("signature %q, want %q", cb.sig, want)
		}
		var body struct {
			ProjectID, TeamID   string
			TransferredStoreIDs []string
		}
		if err := json.Unmarshal(cb.body, &body); err != nil || body.ProjectID != projectID || body.TeamID != "team_user" || len(body.TransferredStoreIDs) != 1 {
			t.Errorf("callback body %s (%v)", cb.body, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no callback")
	}
	waitFor(t, "the callback counted", func() bool { return b.sim.Stats().CallbacksDelivered == 1 })
}

func TestTransferCodesExpireAndStoresCanStay(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{Quirks: vercelsim.Quirks{StoreTransferFails: true}})
	projectID, storeID := connectedApp(t, b, "app")
	old := b.do(t, "POST", "/projects/"+projectID+"/transfer-request", nil).json(t)["code"].(string)
	b.clock.Advance(24 * time.Hour)
	want(t, b.do(t, "PUT", "/projects/transfer-request/"+old, nil), 404)

	fresh := b.do(t, "POST", "/projects/"+projectID+"/transfer-request", nil).json(t)["code"].(string)
	r := b.do(t, "PUT", "/projects/transfer-request/"+fresh, nil)
	want(t, r, 202)
	if errs, _ := r.json(t)["resourceTransferErrors"].([]any); len(errs) != 1 {
		t.Errorf("resourceTransferErrors = %v, want the store's", r.json(t)["resourceTransferErrors"])
	}
	// The project moved to the default claiming team; the store stayed.
	want(t, b.do(t, "GET", "/v9/projects/"+projectID, nil), 404)
	for _, st := range b.sim.Stores() {
		if st.ID == storeID && st.Owner == "team_claimer" {
			t.Error("the store moved although its transfer failed")
		}
	}
}

func TestProjectAndDatabaseCaps(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{MaxProjects: 1, MaxStores: 1})
	connectedApp(t, b, "one")
	r := b.do(t, "POST", "/v11/projects", map[string]any{"name": "two"})
	want(t, r, 400)
	if r.errorCode(t) != "too_many_projects" {
		t.Errorf("code %q, want too_many_projects", r.errorCode(t))
	}
	authz := authzID(t, b.do(t, "POST", "/v1/integrations/billing/authorization", authorizeBody()))
	r = b.do(t, "POST", "/v1/storage/stores/integration", storeBody("db-two", authz))
	want(t, r, 400)
	if r.errorCode(t) != "too_many_stores" {
		t.Errorf("code %q, want too_many_stores", r.errorCode(t))
	}
	// Another team has room of its own.
	want(t, b.do(t, "POST", "/v11/projects?teamId=team_b", map[string]any{"name": "two"}), 200)
}

func TestProjectDomainsAliasProduction(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{})
	b.createProject(t, "site")
	other := b.createProject(t, "other")["id"].(string)
	r := b.do(t, "POST", "/v10/projects/site/domains", map[string]any{"name": "site.apps.example"})
	want(t, r, 200)
	if d := r.json(t); d["apexName"] != "apps.example" || d["verified"] != true {
		t.Errorf("domain answer %v", d)
	}
	r = b.do(t, "POST", "/v10/projects/site/domains", map[string]any{"name": "site.apps.example"})
	want(t, r, 409)
	if r.errorCode(t) != "domain_already_exists" {
		t.Errorf("again: code %q", r.errorCode(t))
	}
	r = b.do(t, "POST", "/v10/projects/"+other+"/domains", map[string]any{"name": "site.apps.example"})
	want(t, r, 409)
	if r.errorCode(t) != "domain_already_in_use" {
		t.Errorf("on another project: code %q", r.errorCode(t))
	}
	want(t, b.do(t, "GET", "/v9/projects/site/domains/site.apps.example", nil), 200)
	want(t, b.do(t, "GET", "/v9/projects/other/domains/site.apps.example", nil), 404)
	want(t, b.do(t, "POST", "/v10/projects/site/domains", map[string]any{"name": "Not A Domain"}), 400)

	src := source("hello")
	r = b.do(t, "POST", "/v13/deployments", deploymentBody("site", b.upload(t, src), len(src)))
	want(t, r, 200)
	id := r.json(t)["id"].(string)
	b.clock.Advance(time.Hour)
	alias, _ := b.readyState(t, id)["alias"].([]any)
	found := false
	for _, a := range alias {
		found = found || a == "site.apps.example"
	}
	if !found {
		t.Errorf("production aliases %v lack the project's domain", alias)
	}
}

func TestClaimPageSaysSimulatedAndClaims(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{})
	projectID, _ := connectedApp(t, b, "page")
	code := b.do(t, "POST", "/projects/"+projectID+"/transfer-request", nil).json(t)["code"].(string)
	page := b.srv.URL + vercelsim.ClaimPagePath + "?code=" + code + "&returnUrl=https%3A%2F%2Fplatform.example%2Fback"
	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<strong>Simulated.</strong>") || !strings.Contains(string(body), code) {
		t.Fatalf("claim page: %d %s", resp.StatusCode, body)
	}
	resp, err = http.PostForm(b.srv.URL+vercelsim.ClaimPagePath, url.Values{"code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Claimed") {
		t.Fatalf("claiming on the page: %d %s", resp.StatusCode, body)
	}
	if p, ok := b.sim.Project(projectID); !ok || p.AccountID != "team_claimer" {
		t.Errorf("after the page's claim the project is %+v", p)
	}
	resp, err = http.PostForm(b.srv.URL+vercelsim.ClaimPagePath, url.Values{"code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("a spent code on the page: %d, want 404", resp.StatusCode)
	}
}
