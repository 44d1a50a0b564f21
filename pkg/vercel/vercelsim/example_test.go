package vercelsim_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// A build that fails on purpose: the source tarball carries the
// fail-build marker, and the deployment ends in ERROR with its message.
func Example() {
	var mu sync.Mutex
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }

	sim := vercelsim.New(vercelsim.Config{Token: "t", BuildTime: 30 * time.Second, Clock: clock})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()

	call := func(method, path string, body []byte, header map[string]string) map[string]any {
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer t")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return out
	}

	src := vercelsim.Tarball(map[string]string{
		"index.html":            "<h1>hello</h1>",
		vercelsim.FailBuildPath: "Error: Cannot find module 'next'",
	})
	sum := sha1.Sum(src)
	sha := hex.EncodeToString(sum[:])
	call("POST", "/v2/files", src, map[string]string{"x-vercel-digest": sha, "Content-Type": "application/octet-stream"})
	body, _ := json.Marshal(map[string]any{
		"name":            "demo",
		"files":           []map[string]any{{"file": ".vercel/source.tgz", "sha": sha, "size": len(src)}},
		"projectSettings": map[string]any{"framework": "nextjs"},
	})
	dep := call("POST", "/v13/deployments", body, nil)
	fmt.Println(dep["readyState"])

	mu.Lock()
	now = now.Add(30 * time.Second)
	mu.Unlock()
	dep = call("GET", "/v13/deployments/"+dep["id"].(string), nil, nil)
	fmt.Println(dep["readyState"], dep["errorCode"], dep["errorMessage"])
	fmt.Println(sim.Stats().Succeeded[vercel.EndpointCreateDeployment], "deployment created")
	// Output:
	// QUEUED
	// ERROR BUILD_FAILED Error: Cannot find module 'next'
	// 1 deployment created
}
