package vercelsim_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// sdkDir holds the check that reads the simulator's answers with Vercel's
// own SDK (@vercel/sdk, pinned in its package-lock.json).
const sdkDir = "sdkcheck"

// Every answer the simulator gives to the calls of deployq's pipeline
// that Vercel's SDK knows is read by the SDK without error: its Zod
// schemas validate each response, so an answer missing a member the SDK
// requires (a project's alias or deploymentExpiration, say) fails here.
// It needs node and npm, which .ci/run installs; the SDK itself is
// installed on first use (npm ci).
func TestSDKReadsEveryAnswer(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed to read the simulator with Vercel's SDK (apt-get install nodejs npm; .ci/run does): %v", err)
	}
	if _, err := os.Stat(filepath.Join(sdkDir, "node_modules", "@vercel", "sdk")); err != nil {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		npm := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		npm.Dir = sdkDir
		if out, err := npm.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", sdkDir, err, out)
		}
	}
	for name, q := range map[string]vercelsim.Quirks{
		"plain": {},
		// READY before its domains are assigned: aliasAssigned false, no
		// alias yet.
		"alias delay": {AliasDelay: 300 * time.Millisecond},
		"blocked":     {BlockDeployments: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sdkCheck(t, node, q)
		})
	}
}

// sdkCheck runs check.mjs with node against a simulator with quirks.
func sdkCheck(t *testing.T, node string, quirks vercelsim.Quirks) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const token, team, icfg = "sdk-token", "team_sdkcheck", "icfg_sdkcheck"
	sim := vercelsim.New(vercelsim.Config{BuildTime: 300 * time.Millisecond, Token: token, Quirks: quirks})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	tgz := filepath.Join(t.TempDir(), "source.tgz")
	if err := os.WriteFile(tgz, vercelsim.Tarball(map[string]string{"package.json": `{"name":"sdkcheck"}`, "app/page.tsx": "export default () => null"}), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, node, "check.mjs")
	cmd.Dir = sdkDir
	cmd.Env = append(os.Environ(), "SIM_URL="+srv.URL, "SIM_TOKEN="+token, "SIM_TEAM="+team, "SIM_ICFG="+icfg, "SIM_TARBALL="+tgz)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r struct {
			Op    string `json:"op"`
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("check.mjs printed %q: %v", sc.Text(), err)
		}
		checked++
		if !r.OK {
			t.Errorf("the SDK cannot read the simulator's answer to %s:\n%s", r.Op, r.Error)
		}
	}
	if runErr != nil && !t.Failed() {
		t.Fatalf("check.mjs: %v\n%s", runErr, stderr.String())
	}
	if checked < 10 {
		t.Fatalf("only %d calls were checked; stderr:\n%s", checked, stderr.String())
	}
	t.Logf("%d answers read by @vercel/sdk", checked)
}
