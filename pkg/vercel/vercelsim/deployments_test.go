package vercelsim_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func TestBuildStateMachine(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{BuildTime: 100 * time.Second})
	id := b.deploy(t, "site", source("hello"))

	d := b.readyState(t, id)
	url := d["url"].(string)
	if !strings.HasPrefix(id, "dpl_") || !strings.HasPrefix(url, "site-") || !strings.HasSuffix(url, ".vercel.app") {
		t.Errorf("id %q url %q", id, url)
	}
	for _, step := range []struct {
		advance time.Duration
		state   string
	}{
		{0, "QUEUED"},
		{9 * time.Second, "QUEUED"},
		{1 * time.Second, "INITIALIZING"},
		{10 * time.Second, "BUILDING"},
		{79 * time.Second, "BUILDING"},
		{1 * time.Second, "READY"},
		{time.Hour, "READY"},
	} {
		b.clock.Advance(step.advance)
		d = b.readyState(t, id)
		if d["readyState"] != step.state || d["status"] != step.state {
			t.Fatalf("at +%v: readyState %v, want %s", b.clock.Now().Sub(epoch), d["readyState"], step.state)
		}
		if assigned := d["aliasAssigned"].(bool); assigned != (step.state == "READY") {
			t.Errorf("at %s: aliasAssigned = %v", step.state, assigned)
		}
	}
	if alias := d["alias"].([]any); len(alias) != 1 || alias[0] != "site.vercel.app" {
		t.Errorf("alias = %v", alias)
	}
	if d["ready"].(float64) != float64(epoch.Add(100*time.Second).UnixMilli()) {
		t.Errorf("ready = %v", d["ready"])
	}
	// By URL as well as by id.
	if byURL := b.readyState(t, url); byURL["id"] != id {
		t.Errorf("GET by url gave %v", byURL["id"])
	}
	want(t, b.do(t, "GET", "/v13/deployments/dpl_unknown", nil), 404)
	if got := b.sim.Stats().DeploymentsReady["site"]; got != 1 {
		t.Errorf("DeploymentsReady[site] = %d", got)
	}
}

func TestInstantBuildsAndJitter(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{BuildTime: -1})
	id := b.deploy(t, "fast", source("x"))
	if s := b.readyState(t, id)["readyState"]; s != "READY" {
		t.Errorf("negative BuildTime: readyState %v, want READY at once", s)
	}

	b = setup(t, vercelsim.Config{BuildTime: 10 * time.Second, BuildJitter: 10 * time.Second})
	b.createProject(t, "jit")
	sha := b.upload(t, source("x"))
	var ends []time.Time
	for range 5 {
		want(t, b.do(t, "POST", "/v13/deployments", deploymentBody("jit", sha, 1)), 200)
	}
	for _, d := range b.sim.Deployments() {
		if dur := d.ReadyAt.Sub(d.CreatedAt); dur < 10*time.Second || dur >= 20*time.Second {
			t.Errorf("build time %v outside [10s, 20s)", dur)
		}
		ends = append(ends, d.ReadyAt)
	}
	if ends[0].Equal(ends[1]) && ends[1].Equal(ends[2]) && ends[2].Equal(ends[3]) {
		t.Error("jitter made no difference")
	}
}

func TestConcurrentBuildsQueue(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{BuildTime: 10 * time.Second, ConcurrentBuilds: 1})
	first := b.deploy(t, "q", source("1"))
	sha := b.upload(t, source("2"))
	r := b.do(t, "POST", "/v13/deployments", deploymentBody("q", sha, 1))
	want(t, r, 200)
	second := r.json(t)["id"].(string)
	if r.json(t)["isInConcurrentBuildsQueue"] != true {
		t.Error("second build is not in the concurrent builds queue")
	}
	b.clock.Advance(10 * time.Second)
	if s := b.readyState(t, first)["readyState"]; s != "READY" {
		t.Errorf("first: %v", s)
	}
	d := b.readyState(t, second)
	if d["readyState"] != "QUEUED" || d["isInConcurrentBuildsQueue"] != false {
		t.Errorf("second, just started: %v queued=%v", d["readyState"], d["isInConcurrentBuildsQueue"])
	}
	b.clock.Advance(10 * time.Second)
	if s := b.readyState(t, second)["readyState"]; s != "READY" {
		t.Errorf("second: %v", s)
	}
}

func TestMissingFiles(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{})
	b.createProject(t, "mf")
	src := source("not uploaded yet")
	sha := sha1hex(src)
	body := deploymentBody("mf", sha, len(src))
	body["files"] = append(body["files"].([]map[string]any), map[string]any{"file": "again.tgz", "sha": sha})

	r := b.do(t, "POST", "/v13/deployments", body)
	want(t, r, 400)
	if got, want := string(r.body), `{"error":{"code":"missing_files","message":"Missing files","missing":["`+sha+`"]}}`; got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
	if n := len(b.sim.Deployments()); n != 0 {
		t.Fatalf("%d deployments after missing_files", n)
	}
	b.upload(t, src)
	want(t, b.do(t, "POST", "/v13/deployments", body), 200)
}

func TestUploads(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{MaxFileSize: 1024})
	data := []byte("some bytes")
	sha := sha1hex(data)

	upload := func(digest string, body []byte) response {
		req := b.request(t, "POST", "/v2/files", body)
		req.Header.Set("Content-Type", "application/octet-stream")
		if digest != "" {
			req.Header.Set("x-vercel-digest", digest)
		}
		return b.send(t, req)
	}
	r := upload(sha1hex([]byte("other bytes")), data)
	want(t, r, 400)
	mustContain(t, string(r.body), "Digest is not valid")
	want(t, upload("", data), 400)
	want(t, upload("xyz", data), 400)
	big := make([]byte, 1025)
	r = upload(sha1hex(big), big)
	want(t, r, 400)
	mustContain(t, string(r.body), "File size is not valid")
	if b.sim.HasFile(sha) {
		t.Fatal("file stored after failed uploads")
	}

	r = upload(sha, data)
	want(t, r, 200)
	if urls, _ := r.json(t)["urls"].([]any); len(urls) != 1 {
		t.Errorf("first upload: %s, want urls", r.body)
	}
	r = upload(strings.ToUpper(sha), data)
	want(t, r, 200)
	if string(r.body) != "{}" {
		t.Errorf("second upload: %s, want {}", r.body)
	}
	if !b.sim.HasFile(sha) {
		t.Error("HasFile = false")
	}
	st := b.sim.Stats()
	if st.Uploads != 2 || st.UploadBytes != int64(2*len(data)) || st.UniqueFiles != 1 {
		t.Errorf("Uploads %d UploadBytes %d UniqueFiles %d", st.Uploads, st.UploadBytes, st.UniqueFiles)
	}
}

func TestFailBuildMarker(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{BuildTime: 10 * time.Second})
	for _, tc := range []struct {
		desc  string
		files map[string]string
		msg   string
	}{
		{"at the root", map[string]string{"index.js": "x", vercelsim.FailBuildPath: "  Module not found: ./nope \n"}, "Module not found: ./nope"},
		{"below a directory", map[string]string{"package/" + vercelsim.FailBuildPath: "boom"}, "boom"},
		{"with ./", map[string]string{"./" + vercelsim.FailBuildPath: "dot"}, "dot"},
		{"empty", map[string]string{vercelsim.FailBuildPath: ""}, "Build failed: .vercelsim/fail-build is present"},
	} {
		name := "fail-" + strings.ReplaceAll(tc.desc, " ", "-")
		name = strings.ReplaceAll(name, "./", "dot")
		id := b.deploy(t, name, vercelsim.Tarball(tc.files))
		if s := b.readyState(t, id)["readyState"]; s != "QUEUED" {
			t.Errorf("%s: failed before building: %v", tc.desc, s)
		}
		b.clock.Advance(10 * time.Second)
		d := b.readyState(t, id)
		if d["readyState"] != "ERROR" || d["errorCode"] != "BUILD_FAILED" || d["errorMessage"] != tc.msg {
			t.Errorf("%s: readyState %v errorCode %v errorMessage %q, want ERROR BUILD_FAILED %q",
				tc.desc, d["readyState"], d["errorCode"], d["errorMessage"], tc.msg)
		}
		if d["aliasAssigned"] != false {
			t.Errorf("%s: failed deployment has an alias", tc.desc)
		}
	}
	// A marker elsewhere in a name does not count.
	id := b.deploy(t, "near-miss", vercelsim.Tarball(map[string]string{"docs/fail-build": "x", ".vercelsim/fail-build.md": "x"}))
	b.clock.Advance(10 * time.Second)
	if s := b.readyState(t, id)["readyState"]; s != "READY" {
		t.Errorf("near miss: %v", s)
	}

	// The marker as a file of the deployment, inlined or uploaded.
	b.createProject(t, "inline")
	r := b.do(t, "POST", "/v13/deployments", map[string]any{
		"name": "inline", "project": "inline",
		"files": []map[string]any{
			{"file": "index.html", "data": "<h1>hi</h1>"},
			{"file": vercelsim.FailBuildPath, "data": base64.StdEncoding.EncodeToString([]byte("inline failure")), "encoding": "base64"},
		},
	})
	want(t, r, 200)
	marker := []byte("uploaded failure\n")
	b.createProject(t, "uploaded")
	r2 := b.do(t, "POST", "/v13/deployments", map[string]any{
		"name": "uploaded", "project": "uploaded",
		"files": []map[string]any{{"file": vercelsim.FailBuildPath, "sha": b.upload(t, marker), "size": len(marker)}},
	})
	want(t, r2, 200)
	b.clock.Advance(10 * time.Second)
	for id, msg := range map[string]string{r.json(t)["id"].(string): "inline failure", r2.json(t)["id"].(string): "uploaded failure"} {
		if d := b.readyState(t, id); d["readyState"] != "ERROR" || d["errorMessage"] != msg {
			t.Errorf("%s: %v %v, want ERROR %q", id, d["readyState"], d["errorMessage"], msg)
		}
	}
	st := b.sim.Stats()
	if st.DeploymentsFailed["fail-at-the-root"] != 1 || st.DeploymentsReady["near-miss"] != 1 {
		t.Errorf("DeploymentsFailed %v DeploymentsReady %v", st.DeploymentsFailed, st.DeploymentsReady)
	}
}

func TestDeploymentProjectResolution(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{})
	sha := b.upload(t, source("x"))

	// An unknown `project` is a 404.
	body := deploymentBody("ghost", sha, 1)
	want(t, b.do(t, "POST", "/v13/deployments", body), 404)

	// Without `project`, the project called `name` is created, but a new
	// project needs projectSettings.
	body = deploymentBody("implicit", sha, 1)
	delete(body, "project")
	delete(body, "projectSettings")
	r := b.do(t, "POST", "/v13/deployments", body)
	want(t, r, 400)
	if r.errorCode(t) != "missing_project_settings" {
		t.Errorf("code = %q", r.errorCode(t))
	}
	r = b.do(t, "POST", "/v13/deployments?skipAutoDetectionConfirmation=1", body)
	want(t, r, 200)
	p, ok := b.sim.Project("implicit")
	if !ok || r.json(t)["projectId"] != p.ID {
		t.Fatalf("implicit project: %v %+v", ok, p)
	}

	// A project created without a framework needs projectSettings on its
	// first deployment only.
	want(t, b.do(t, "POST", "/v11/projects", map[string]any{"name": "bare"}), 200)
	body = deploymentBody("bare", sha, 1)
	delete(body, "projectSettings")
	want(t, b.do(t, "POST", "/v13/deployments", body), 400)
	body["projectSettings"] = map[string]any{"framework": "vite"}
	want(t, b.do(t, "POST", "/v13/deployments", body), 200)
	delete(body, "projectSettings")
	want(t, b.do(t, "POST", "/v13/deployments", body), 200)
	if p, _ := b.sim.Project("bare"); p.Framework != "vite" || p.Deployments != 2 {
		t.Errorf("bare = %+v", p)
	}

	bad := deploymentBody("bare", sha, 1)
	bad["fileList"] = []string{}
	want(t, b.do(t, "POST", "/v13/deployments", bad), 400)
	bad = deploymentBody("bare", sha, 1)
	bad["files"] = []any{}
	want(t, b.do(t, "POST", "/v13/deployments", bad), 400)
}

func TestListDeployments(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{BuildTime: 10 * time.Second})
	pa := b.createProject(t, "list-a")
	b.createProject(t, "list-b")
	sha := b.upload(t, source("x"))
	var ids []string
	for i := range 5 {
		body := deploymentBody("list-a", sha, 1)
		body["meta"] = map[string]string{"requestId": fmt.Sprint("req-", i)}
		r := b.do(t, "POST", "/v13/deployments", body)
		want(t, r, 200)
		ids = append(ids, r.json(t)["id"].(string))
		b.clock.Advance(time.Second)
	}
	want(t, b.do(t, "POST", "/v13/deployments", deploymentBody("list-b", sha, 1)), 200)

	r := b.do(t, "GET", "/v6/deployments?projectId="+pa["id"].(string)+"&limit=2", nil)
	want(t, r, 200)
	body := r.json(t)
	deps := body["deployments"].([]any)
	if len(deps) != 2 {
		t.Fatalf("%d deployments, want 2", len(deps))
	}
	newest := deps[0].(map[string]any)
	if newest["uid"] != ids[4] || newest["meta"].(map[string]any)["requestId"] != "req-4" {
		t.Errorf("newest = %v", newest)
	}
	// Created 1 s ago with a 10 s build: initializing; the others, older
	// than 2 s, are building.
	if newest["state"] != "INITIALIZING" || newest["readyState"] != "INITIALIZING" {
		t.Errorf("newest state %v / %v", newest["state"], newest["readyState"])
	}
	if deps[1].(map[string]any)["state"] != "BUILDING" {
		t.Errorf("second state %v", deps[1].(map[string]any)["state"])
	}
	pg := body["pagination"].(map[string]any)
	if pg["count"] != 2.0 || pg["next"] == nil {
		t.Errorf("pagination = %v", pg)
	}

	// Follow `next` to the end.
	seen := 2
	next := int64(pg["next"].(float64))
	for {
		r = b.do(t, "GET", fmt.Sprintf("/v6/deployments?projectId=list-a&limit=2&until=%d", next), nil)
		want(t, r, 200)
		body = r.json(t)
		seen += len(body["deployments"].([]any))
		pg = body["pagination"].(map[string]any)
		if pg["next"] == nil {
			break
		}
		next = int64(pg["next"].(float64))
	}
	if seen != 5 {
		t.Errorf("paged through %d deployments, want 5", seen)
	}

	r = b.do(t, "GET", "/v6/deployments", nil)
	want(t, r, 200)
	if n := len(r.json(t)["deployments"].([]any)); n != 6 {
		t.Errorf("unfiltered: %d", n)
	}
	r = b.do(t, "GET", "/v6/deployments?projectId=list-a&state=BUILDING", nil)
	want(t, r, 200)
	if n := len(r.json(t)["deployments"].([]any)); n != 4 {
		t.Errorf("BUILDING: %d, want 4", n)
	}
	want(t, b.do(t, "GET", "/v6/deployments?projectId=nope", nil), 404)
	want(t, b.do(t, "GET", "/v6/deployments?limit=abc", nil), 400)
}
