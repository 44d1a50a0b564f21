package vercel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sync"
	"testing"
)

func TestCreateDeployment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("POST /v13/deployments", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodPost, "/v13/deployments", nil)
		checkJSONBody(t, r, `{"name":"my-app","project":"prj_1","target":"production",
			"files":[{"file":".vercel/source.tgz","sha":"abc","size":12}],
			"projectSettings":{"framework":"nextjs"},"meta":{"deployq_request":"req-1"}}`)
		writeJSON(w, http.StatusOK, `{"id":"dpl_1","url":"my-app-x1.vercel.app","name":"my-app","projectId":"prj_1",
			"readyState":"QUEUED","alias":["my-app.vercel.app"],"aliasAssigned":false,"meta":{"deployq_request":"req-1"},
			"createdAt":1730000000000,"errorMessage":null,"lambdas":[],"build":{"env":[]}}`)
	})
	d, _, err := b.client.CreateDeployment(t.Context(), CreateDeploymentRequest{
		Name:            "my-app",
		Project:         "prj_1",
		Target:          "production",
		Files:           []DeploymentFile{{File: ".vercel/source.tgz", SHA: "abc", Size: 12}},
		ProjectSettings: &ProjectSettings{Framework: "nextjs"},
		Meta:            map[string]string{"deployq_request": "req-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &Deployment{
		ID: "dpl_1", URL: "my-app-x1.vercel.app", Name: "my-app", ProjectID: "prj_1", ReadyState: StateQueued,
		Alias: []string{"my-app.vercel.app"}, Meta: map[string]string{"deployq_request": "req-1"}, CreatedAt: 1730000000000,
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("deployment = %+v\nwant %+v", d, want)
	}
}

func TestCreateDeploymentMissingFiles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("POST /v13/deployments", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Vercel-Id", "req-9")
		writeJSON(w, http.StatusBadRequest, `{"error":{"code":"missing_files","message":"Missing files","missing":["s1","s2"]}}`)
	})
	_, resp, err := b.client.CreateDeployment(t.Context(), CreateDeploymentRequest{Name: "app"})
	var mf *MissingFilesError
	if !errors.As(err, &mf) || !reflect.DeepEqual(mf.Missing, []string{"s1", "s2"}) || mf.RequestID != "req-9" {
		t.Fatalf("err = %v, want *MissingFilesError for s1, s2", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || ae.Code != "missing_files" {
		t.Errorf("errors.As(*APIError) = %+v", ae)
	}
	if resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("Response = %+v", resp)
	}
}

// fakeDeployAPI answers create deployment with missing_files until every
// file it wants is uploaded, and records what happens.
type fakeDeployAPI struct {
	t        *testing.T
	mu       sync.Mutex
	have     map[string]bool
	want     []string
	creates  int
	uploads  []string
	forgetOn int // answer missing_files regardless, for this many creates
}

func (f *fakeDeployAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v13/deployments", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.creates++
		var missing []string
		for _, sha := range f.want {
			if !f.have[sha] || f.creates <= f.forgetOn {
				missing = append(missing, sha)
			}
		}
		if len(missing) > 0 {
			body, _ := json.Marshal(map[string]any{"error": map[string]any{"code": "missing_files", "message": "Missing files", "missing": missing}})
			writeJSON(w, http.StatusBadRequest, string(body))
			return
		}
		writeJSON(w, http.StatusOK, `{"id":"dpl_1","readyState":"QUEUED"}`)
	})
	mux.HandleFunc("POST /v2/files", func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		sha := r.Header.Get("x-vercel-digest")
		if SHA1Hex(data) != sha {
			f.t.Errorf("upload of %s carries bytes with SHA-1 %s", sha, SHA1Hex(data))
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.uploads = append(f.uploads, sha)
		f.have[sha] = true
		writeJSON(w, http.StatusOK, `{}`)
	})
}

func (f *fakeDeployAPI) state() (creates int, uploads []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates, append([]string(nil), f.uploads...)
}

func mapSource(files map[string][]byte) (FileSource, *[]string) {
	var mu sync.Mutex
	var asked []string
	return FileSourceFunc(func(_ context.Context, sha string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, sha)
		data, ok := files[sha]
		if !ok {
			return nil, fmt.Errorf("no file %s", sha)
		}
		return data, nil
	}), &asked
}

func TestCreateDeploymentUploadingRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, c, known := []byte("file a"), []byte("file c"), []byte("known")
	shaA, shaC, shaKnown := SHA1Hex(a), SHA1Hex(c), SHA1Hex(known)
	api := &fakeDeployAPI{t: t, have: map[string]bool{shaKnown: true}, want: []string{shaA, shaKnown, shaC}}
	api.register(b.mux)
	src, asked := mapSource(map[string][]byte{shaA: a, shaC: c, shaKnown: known})

	d, resp, err := b.client.CreateDeploymentUploading(t.Context(), CreateDeploymentRequest{Name: "app"}, src)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "dpl_1" || resp.StatusCode != http.StatusOK {
		t.Errorf("deployment = %+v, status %d", d, resp.StatusCode)
	}
	creates, uploads := api.state()
	if creates != 2 {
		t.Errorf("%d creates, want 2", creates)
	}
	if want := []string{shaA, shaC}; !reflect.DeepEqual(uploads, want) || !reflect.DeepEqual(*asked, want) {
		t.Errorf("uploads = %v, asked = %v; want exactly the missing %v", uploads, *asked, want)
	}
}

func TestCreateDeploymentUploadingNoRoundTripNeeded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	api := &fakeDeployAPI{t: t, have: map[string]bool{}}
	api.register(b.mux)
	src, asked := mapSource(nil)
	if _, _, err := b.client.CreateDeploymentUploading(t.Context(), CreateDeploymentRequest{Name: "app"}, src); err != nil {
		t.Fatal(err)
	}
	if creates, uploads := api.state(); creates != 1 || len(uploads) != 0 || len(*asked) != 0 {
		t.Errorf("creates %d, uploads %v, asked %v; want one create only", creates, uploads, *asked)
	}
}

func TestCreateDeploymentUploadingGivesUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := []byte("file a")
	shaA := SHA1Hex(a)
	// A server that forgets: missing_files on every create.
	api := &fakeDeployAPI{t: t, have: map[string]bool{}, want: []string{shaA, shaA}, forgetOn: 1000}
	api.register(b.mux)
	src, _ := mapSource(map[string][]byte{shaA: a})

	_, resp, err := b.client.CreateDeploymentUploading(t.Context(), CreateDeploymentRequest{Name: "app"}, src)
	var mf *MissingFilesError
	if !errors.As(err, &mf) {
		t.Fatalf("err = %v, want *MissingFilesError after the last round trip", err)
	}
	if resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("Response = %+v, want the last create's", resp)
	}
	creates, uploads := api.state()
	if creates != 1+maxMissingFilesRoundTrips {
		t.Errorf("%d creates, want %d", creates, 1+maxMissingFilesRoundTrips)
	}
	if want := slices.Repeat([]string{shaA}, maxMissingFilesRoundTrips); !reflect.DeepEqual(uploads, want) {
		t.Errorf("uploads = %v, want %v (a duplicate sha in one answer is uploaded once)", uploads, want)
	}
}

func TestCreateDeploymentUploadingSourceProblems(t *testing.T) {
	t.Parallel()
	a := []byte("file a")
	shaA := SHA1Hex(a)
	tests := []struct {
		name  string
		files map[string][]byte
		check func(t *testing.T, err error)
	}{
		{"source lacks the file", map[string][]byte{}, func(t *testing.T, err error) {
			if err == nil || errors.As(err, new(*MissingFilesError)) {
				t.Errorf("err = %v, want the source's error", err)
			}
		}},
		{"source gives other bytes", map[string][]byte{shaA: []byte("tampered")}, func(t *testing.T, err error) {
			var ia *InvalidArgumentError
			if !errors.As(err, &ia) {
				t.Errorf("err = %v, want *InvalidArgumentError", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			api := &fakeDeployAPI{t: t, have: map[string]bool{}, want: []string{shaA}}
			api.register(b.mux)
			src, _ := mapSource(tt.files)
			_, _, err := b.client.CreateDeploymentUploading(t.Context(), CreateDeploymentRequest{Name: "app"}, src)
			tt.check(t, err)
			if creates, uploads := api.state(); len(uploads) != 0 || creates != 1 {
				t.Errorf("creates %d, uploads %v; want nothing sent after the source failed", creates, uploads)
			}
		})
	}
}

func TestCreateDeploymentUploadingUploadFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := []byte("file a")
	shaA := SHA1Hex(a)
	b.mux.HandleFunc("POST /v13/deployments", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusBadRequest, fmt.Sprintf(`{"error":{"code":"missing_files","missing":[%q]}}`, shaA))
	})
	b.mux.HandleFunc("POST /v2/files", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusTooManyRequests, `{"error":{"code":"rate_limited","message":"slow"}}`)
	})
	src, _ := mapSource(map[string][]byte{shaA: a})
	_, resp, err := b.client.CreateDeploymentUploading(t.Context(), CreateDeploymentRequest{Name: "app"}, src)
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.Endpoint != EndpointUploadFile {
		t.Fatalf("err = %v, want the upload's *RateLimitError", err)
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("Response = %+v, want the upload's", resp)
	}
}

func TestGetDeployment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		answer   string
		want     Deployment
		terminal bool
	}{
		{"building", `{"id":"dpl_1","readyState":"BUILDING","aliasAssigned":false,"unknown":{"x":[1]}}`,
			Deployment{ID: "dpl_1", ReadyState: StateBuilding}, false},
		{"ready", `{"id":"dpl_1","url":"a.vercel.app","readyState":"READY","aliasAssigned":true,"alias":["a.vercel.app"],` +
			`"createdAt":1730000000000,"buildingAt":1730000001000,"ready":1730000021500}`,
			Deployment{ID: "dpl_1", URL: "a.vercel.app", ReadyState: StateReady, AliasAssigned: true, Alias: []string{"a.vercel.app"},
				CreatedAt: 1730000000000, BuildingAt: 1730000001000, Ready: 1730000021500}, true},
		{"error", `{"id":"dpl_1","readyState":"ERROR","errorCode":"BUILD_FAILED","errorMessage":"npm ERR!"}`,
			Deployment{ID: "dpl_1", ReadyState: StateError, ErrorCode: "BUILD_FAILED", ErrorMessage: "npm ERR!"}, true},
		{"canceled", `{"id":"dpl_1","readyState":"CANCELED","errorMessage":null}`,
			Deployment{ID: "dpl_1", ReadyState: StateCanceled}, true},
		{"aliasAssigned as a timestamp", `{"id":"dpl_1","readyState":"READY","aliasAssigned":1730000000000}`,
			Deployment{ID: "dpl_1", ReadyState: StateReady, AliasAssigned: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.mux.HandleFunc("GET /v13/deployments/{id}", func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodGet, "/v13/deployments/dpl_1", nil)
				writeJSON(w, http.StatusOK, tt.answer)
			})
			d, _, err := b.client.GetDeployment(t.Context(), "dpl_1")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*d, tt.want) {
				t.Errorf("deployment = %+v\nwant %+v", *d, tt.want)
			}
			if d.Terminal() != tt.terminal {
				t.Errorf("Terminal = %t, want %t", d.Terminal(), tt.terminal)
			}
		})
	}
}

func TestListDeployments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  ListDeploymentsOptions
		query url.Values
	}{
		{"default limit", ListDeploymentsOptions{}, url.Values{"limit": {"20"}}},
		{"project and limit", ListDeploymentsOptions{ProjectID: "prj_1", Limit: 5}, url.Values{"limit": {"5"}, "projectId": {"prj_1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.mux.HandleFunc("GET /v6/deployments", func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodGet, "/v6/deployments", tt.query)
				writeJSON(w, http.StatusOK, `{"deployments":[
					{"uid":"dpl_2","name":"app","projectId":"prj_1","url":"app-2.vercel.app","created":1730000001000,"state":"BUILDING",
					 "meta":{"deployq_request":"req-2","githubCommitSha":"abc","n":3},"aliasAssigned":null,"creator":{"uid":"u"},"type":"LAMBDAS"},
					{"uid":"dpl_1","name":"app","projectId":"prj_1","url":"app-1.vercel.app","created":1730000000000,"createdAt":1730000000500,
					 "state":"READY","readyState":"READY","aliasAssigned":1730000000900,"inspectorUrl":null}],
					"pagination":{"count":2,"next":null,"prev":null}}`)
			})
			got, _, err := b.client.ListDeployments(t.Context(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := []Deployment{
				{ID: "dpl_2", Name: "app", ProjectID: "prj_1", URL: "app-2.vercel.app", ReadyState: StateBuilding, CreatedAt: 1730000001000,
					Meta: map[string]string{"deployq_request": "req-2", "githubCommitSha": "abc"}},
				{ID: "dpl_1", Name: "app", ProjectID: "prj_1", URL: "app-1.vercel.app", ReadyState: StateReady, CreatedAt: 1730000000500,
					AliasAssigned: true},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("deployments = %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestListDeploymentsEmpty(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("GET /v6/deployments", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, `{"deployments":[],"pagination":{"count":0}}`)
	})
	got, _, err := b.client.ListDeployments(t.Context(), ListDeploymentsOptions{})
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("ListDeployments = %v, %v; want an empty list", got, err)
	}
}

func TestTruthy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		want bool
	}{
		{``, false}, {`null`, false}, {`false`, false}, {`true`, true},
		{`0`, false}, {`1730000000000`, true}, {` true `, true}, {`"yes"`, false},
	}
	for _, tt := range tests {
		if got := truthy(json.RawMessage(bytes.TrimSpace([]byte(tt.raw)))); got != tt.want {
			t.Errorf("truthy(%s) = %t, want %t", tt.raw, got, tt.want)
		}
	}
}
