package vercelsim_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

const testToken = "test-token"

// epoch is the fake clock's start: a whole second, so reset times are
// easy to write down.
var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// bundle is what a test gets from setup: a simulator on a real loopback
// HTTP server, and the clock that drives it.
type bundle struct {
	sim   *vercelsim.Server
	srv   *httptest.Server
	clock *fakeClock
}

// setup starts a simulator. Unless cfg says otherwise it uses a fake
// clock, seed 1 and testToken.
func setup(t *testing.T, cfg vercelsim.Config) *bundle {
	t.Helper()
	clock := &fakeClock{t: epoch}
	if cfg.Clock == nil {
		cfg.Clock = clock.Now
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	sim := vercelsim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	return &bundle{sim: sim, srv: srv, clock: clock}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// decode unmarshals the body into a generic map, failing the test on bad
// JSON.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// errorCode is the error.code of an error body.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// do sends a request with the test token. body is nil, []byte (sent raw) or
// anything else (sent as JSON).
func (b *bundle) do(t *testing.T, method, path string, body any) response {
	t.Helper()
	return b.send(t, b.request(t, method, path, body))
}

func (b *bundle) request(t *testing.T, method, path string, body any) *http.Request {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(v)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, b.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func (b *bundle) send(t *testing.T, req *http.Request) response {
	t.Helper()
	res, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.Header.Get("x-vercel-id") == "" {
		t.Errorf("%s %s: answer without x-vercel-id", req.Method, req.URL.Path)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// want fails the test unless r has the status.
func want(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
}

func (b *bundle) createProject(t *testing.T, name string) map[string]any {
	t.Helper()
	r := b.do(t, "POST", "/v11/projects", map[string]any{"name": name, "framework": "nextjs"})
	want(t, r, 200)
	return r.json(t)
}

// upload posts data to /v2/files and returns its SHA-1.
func (b *bundle) upload(t *testing.T, data []byte) string {
	t.Helper()
	sha := sha1hex(data)
	req := b.request(t, "POST", "/v2/files", data)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("x-vercel-digest", sha)
	want(t, b.send(t, req), 200)
	return sha
}

// deploymentBody is a create-deployment body for one source tarball.
func deploymentBody(project, sha string, size int) map[string]any {
	return map[string]any{
		"name":            project,
		"project":         project,
		"files":           []map[string]any{{"file": ".vercel/source.tgz", "sha": sha, "size": size}},
		"projectSettings": map[string]any{"framework": "nextjs"},
		"target":          "production",
	}
}

// deploy creates a project and a deployment of src, and returns the
// deployment's id.
func (b *bundle) deploy(t *testing.T, project string, src []byte) string {
	t.Helper()
	b.createProject(t, project)
	sha := b.upload(t, src)
	r := b.do(t, "POST", "/v13/deployments", deploymentBody(project, sha, len(src)))
	want(t, r, 200)
	return r.json(t)["id"].(string)
}

func (b *bundle) readyState(t *testing.T, id string) map[string]any {
	t.Helper()
	r := b.do(t, "GET", "/v13/deployments/"+id, nil)
	want(t, r, 200)
	return r.json(t)
}

// source is a plain source tarball.
func source(content string) []byte {
	return vercelsim.Tarball(map[string]string{"index.html": content})
}

// waitFor polls cond until it holds or the deadline passes: for outcomes
// that follow a real event (a client giving up), not for build progress,
// which the fake clock drives.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q does not contain %q", s, sub)
	}
}

func sha1hex(data []byte) string {
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:])
}
