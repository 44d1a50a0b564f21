package vercel

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestCreateProject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []Option
		path    string
		version string
	}{
		{"default v11", nil, "/v11/projects", "v11"},
		{"v11 explicit", []Option{WithProjectsAPIVersion(11)}, "/v11/projects", "v11"},
		{"v10 as in Prisma's guide", []Option{WithProjectsAPIVersion(10)}, "/v10/projects", "v10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.opts...)
			b.mux.HandleFunc("POST "+tt.path, func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodPost, tt.path, nil)
				checkJSONBody(t, r, `{"name":"my-app","framework":"nextjs","environmentVariables":[
					{"key":"A","value":"1","type":"encrypted","target":["production","preview","development"]},
					{"key":"B","value":"2","type":"plain","target":["preview"]}]}`)
				writeJSON(w, http.StatusOK, `{"id":"prj_1","name":"my-app","accountId":"team_abc","framework":"nextjs","createdAt":1730000000000,"extra":{"a":1}}`)
			})
			envs := []EnvVar{{Key: "A", Value: "1"}, {Key: "B", Value: "2", Type: "plain", Target: []string{"preview"}}}
			p, resp, err := b.client.CreateProject(t.Context(), CreateProjectRequest{Name: "my-app", Framework: "nextjs", EnvironmentVariables: envs})
			if err != nil {
				t.Fatal(err)
			}
			want := &Project{ID: "prj_1", Name: "my-app", AccountID: "team_abc", Framework: "nextjs", CreatedAt: 1730000000000}
			if !reflect.DeepEqual(p, want) || resp.StatusCode != http.StatusOK {
				t.Errorf("CreateProject = %+v, %d; want %+v, 200", p, resp.StatusCode, want)
			}
			if envs[0].Type != "" || envs[0].Target != nil {
				t.Errorf("the caller's environment variables were modified: %+v", envs[0])
			}
		})
	}
}

func TestCreateProjectMinimalBody(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("POST /v11/projects", func(w http.ResponseWriter, r *http.Request) {
		checkJSONBody(t, r, `{"name":"my-app"}`)
		writeJSON(w, http.StatusOK, `{"id":"prj_1","name":"my-app"}`)
	})
	if _, _, err := b.client.CreateProject(t.Context(), CreateProjectRequest{Name: "my-app"}); err != nil {
		t.Fatal(err)
	}
}

func TestCreateProjectConflict(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("POST /v11/projects", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusConflict, `{"error":{"code":"conflict","message":"A project with the provided name already exists."}}`)
	})
	p, resp, err := b.client.CreateProject(t.Context(), CreateProjectRequest{Name: "my-app"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict || ae.Code != "conflict" || ae.Endpoint != EndpointCreateProject {
		t.Fatalf("err = %v, want a 409 *APIError", err)
	}
	if p != nil || resp == nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("project = %v, response = %+v", p, resp)
	}
	if d := Classify(err); d.Class != Permanent || d.Reason != ReasonConflict {
		t.Errorf("Classify = %+v", d)
	}
}

func TestGetProject(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("GET /v9/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodGet, "/v9/projects/my-app", nil)
		writeJSON(w, http.StatusOK, `{"id":"prj_1","name":"my-app","accountId":"team_abc"}`)
	})
	p, _, err := b.client.GetProject(t.Context(), "my-app")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "prj_1" || p.Name != "my-app" || p.AccountID != "team_abc" {
		t.Errorf("project = %+v", p)
	}
}

func TestDeleteProject(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("DELETE /v9/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodDelete, "/v9/projects/prj_1", nil)
		w.WriteHeader(http.StatusNoContent)
	})
	resp, err := b.client.DeleteProject(t.Context(), "prj_1")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("status = %d, want 204", resp.StatusCode)
	}
}

func TestCreateTransferRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  TransferRequest
		body string
	}{
		{"no callback", TransferRequest{}, `{}`},
		{"callback", TransferRequest{CallbackURL: "https://example.com/cb", CallbackSecret: "s"}, `{"callbackUrl":"https://example.com/cb","callbackSecret":"s"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.mux.HandleFunc("POST /projects/{id}/transfer-request", func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodPost, "/projects/prj_1/transfer-request", nil)
				checkJSONBody(t, r, tt.body)
				writeJSON(w, http.StatusOK, `{"code":"f99cc49a-602e-4786-a748-762dfb205880"}`)
			})
			tc, _, err := b.client.CreateTransferRequest(t.Context(), "prj_1", tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.Code != "f99cc49a-602e-4786-a748-762dfb205880" {
				t.Errorf("code = %q", tc.Code)
			}
		})
	}
}

func TestPathSegmentsEscaped(t *testing.T) {
	t.Parallel()
	const id = "a/b?c#d %e"
	const esc = "a%2Fb%3Fc%23d%20%25e"
	b := setup(t)
	hit := func(method, path, answer string, status int) {
		b.mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
			want := strings.NewReplacer("{a}", esc, "{b}", esc, "{c}", esc).Replace(path)
			checkRequest(t, r, method, want, nil)
			for _, name := range []string{"a", "b", "c"} {
				if strings.Contains(path, "{"+name+"}") && r.PathValue(name) != id {
					t.Errorf("path value %s = %q, want %q", name, r.PathValue(name), id)
				}
			}
			writeJSON(w, status, answer)
		})
	}
	hit("GET", "/v9/projects/{a}", `{"id":"prj_1"}`, 200)
	hit("DELETE", "/v9/projects/{a}", ``, 204)
	hit("POST", "/projects/{a}/transfer-request", `{"code":"x"}`, 200)
	hit("DELETE", "/v1/storage/stores/integration/{a}", ``, 200)
	hit("GET", "/v1/installations/{a}/resources", `{"resources":[]}`, 200)
	hit("GET", "/v13/deployments/{a}", `{"id":"dpl_1"}`, 200)
	hit("POST", "/v1/integrations/installations/{a}/resources/{b}/connections", ``, 201)

	ctx := t.Context()
	c := b.client
	calls := map[string]func() error{
		"GetProject":            func() error { _, _, err := c.GetProject(ctx, id); return err },
		"DeleteProject":         func() error { _, err := c.DeleteProject(ctx, id); return err },
		"CreateTransferRequest": func() error { _, _, err := c.CreateTransferRequest(ctx, id, TransferRequest{}); return err },
		"DeleteStore":           func() error { _, err := c.DeleteStore(ctx, id); return err },
		"ListResources":         func() error { _, _, err := c.ListResources(ctx, id); return err },
		"GetDeployment":         func() error { _, _, err := c.GetDeployment(ctx, id); return err },
		"ConnectStore": func() error {
			_, err := c.ConnectStore(ctx, ConnectStoreRequest{IntegrationConfigurationID: id, StoreID: id, ProjectID: "prj_1"})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestInvalidArgumentsSendNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, WithConnectPath(ConnectPathWithProduct))
	// No handlers: setup's catch-all fails the test on any request.
	ctx := t.Context()
	c := b.client
	calls := map[string]func() error{
		"CreateProject no name":   func() error { _, _, err := c.CreateProject(ctx, CreateProjectRequest{}); return err },
		"GetProject empty":        func() error { _, _, err := c.GetProject(ctx, ""); return err },
		"GetProject dot-dot":      func() error { _, _, err := c.GetProject(ctx, ".."); return err },
		"DeleteProject dot":       func() error { _, err := c.DeleteProject(ctx, "."); return err },
		"CreateTransferRequest":   func() error { _, _, err := c.CreateTransferRequest(ctx, "", TransferRequest{}); return err },
		"DeleteStore":             func() error { _, err := c.DeleteStore(ctx, ""); return err },
		"ListResources":           func() error { _, _, err := c.ListResources(ctx, ""); return err },
		"GetDeployment":           func() error { _, _, err := c.GetDeployment(ctx, ""); return err },
		"CreateDeployment noname": func() error { _, _, err := c.CreateDeployment(ctx, CreateDeploymentRequest{}); return err },
		"ListDeployments limit":   func() error { _, _, err := c.ListDeployments(ctx, ListDeploymentsOptions{Limit: -1}); return err },
		"UploadFile no sha":       func() error { _, err := c.UploadFile(ctx, "", []byte("x")); return err },
		"ConnectStore no project": func() error {
			_, err := c.ConnectStore(ctx, ConnectStoreRequest{IntegrationConfigurationID: "icfg", StoreID: "store", ProductID: "p"})
			return err
		},
		"ConnectStore no store": func() error {
			_, err := c.ConnectStore(ctx, ConnectStoreRequest{IntegrationConfigurationID: "icfg", ProductID: "p", ProjectID: "prj"})
			return err
		},
		"ConnectStore no product": func() error {
			_, err := c.ConnectStore(ctx, ConnectStoreRequest{IntegrationConfigurationID: "icfg", StoreID: "store", ProjectID: "prj"})
			return err
		},
	}
	for name, call := range calls {
		err := call()
		var ia *InvalidArgumentError
		if !errors.As(err, &ia) {
			t.Errorf("%s: err = %v, want *InvalidArgumentError", name, err)
			continue
		}
		if d := Classify(err); d.Class != Permanent || d.Reason != ReasonInvalidArgument {
			t.Errorf("%s: Classify = %+v", name, d)
		}
	}
}

func TestClaimURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ code, returnURL, want string }{
		{"abc", "", "https://vercel.com/claim-deployment?code=abc"},
		{"abc", "https://app.example.com/done?x=1&y=2", "https://vercel.com/claim-deployment?code=abc&returnUrl=https%3A%2F%2Fapp.example.com%2Fdone%3Fx%3D1%26y%3D2"},
	}
	for _, tt := range tests {
		if got := ClaimURL(tt.code, tt.returnURL); got != tt.want {
			t.Errorf("ClaimURL(%q, %q) = %s, want %s", tt.code, tt.returnURL, got, tt.want)
		}
	}
}

func TestValidateProjectName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ok   bool
	}{
		{"my-app", true},
		{"a.b_c-1", true},
		{strings.Repeat("a", 100), true},
		{"", false},
		{strings.Repeat("a", 101), false},
		{"My-App", false},
		{"a---b", false},
		{"a b", false},
		{"a/b", false},
		{"ünï", false},
	}
	for _, tt := range tests {
		err := ValidateProjectName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateProjectName(%q) = %v, want ok=%t", tt.name, err, tt.ok)
		}
	}
}
