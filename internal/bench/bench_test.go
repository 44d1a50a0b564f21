package bench

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
)

func TestCPUModel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	with := filepath.Join(dir, "cpuinfo")
	if err := os.WriteFile(with, []byte("processor\t: 0\nmodel name\t: Test CPU @ 2GHz\nmodel name\t: second\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := cpuModel(with); got != "Test CPU @ 2GHz" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel(filepath.Join(dir, "missing")); got != "unknown" {
		t.Errorf("missing file: %q", got)
	}
}

func TestStartPiped(t *testing.T) {
	t.Parallel()
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Skip("no cat here")
	}
	cmd := exec.Command(cat)
	stdin, stdout, err := StartPiped(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, "hello\n"); err != nil {
		t.Fatal(err)
	}
	stdin.Close() // the child sees end of file and exits
	out, err := io.ReadAll(stdout)
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("read %q, %v", out, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

// Await returns every wanted request's terminal event, drops others, and
// names the ids still without one when its timeout passes.
func TestFollowerAwait(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := Follow(ctx, h.Client, "acme", 8)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	want := map[string]bool{"never-submitted": true}
	for _, id := range []string{"one", "two", "unwanted"} {
		req := jobs.Request{ID: id, Tenant: "acme", Name: id}
		h.Submit(t, req, h.Tarball(t, nil))
		if id != "unwanted" {
			want[id] = true
		}
	}
	var ticks int
	got, missing, err := f.Await(ctx, want, 3*time.Second, time.Second, func(int) { ticks++ })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["one"].Type != jobs.TypeSucceeded || got["two"].At.IsZero() {
		t.Fatalf("got %v", got)
	}
	if len(missing) != 1 || missing[0] != "never-submitted" {
		t.Fatalf("missing %v", missing)
	}
	if ticks == 0 {
		t.Error("no progress report during the wait")
	}
}

// A process says it is ready on its first line; stopping it signals it
// and reports how it ended, the same on a second call.
func TestProcessReadyAndStop(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh here")
	}
	ready, err := StartProcess(exec.Command(sh, "-c", "echo ready; read line"))
	if err != nil {
		t.Fatal(err)
	}
	if line, err := ready.Ready(t.Context(), 10*time.Second); err != nil || line != "ready" {
		t.Fatalf("ready line %q, %v", line, err)
	}
	mute, err := StartProcess(exec.Command(sh, "-c", "exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	if line, err := mute.Ready(t.Context(), 10*time.Second); err != nil || line != "" {
		t.Fatalf("a process that said nothing: %q, %v", line, err)
	}
	exits := StopProcesses(10*time.Second, ready, mute)
	if exits[0] == ExitOK || !strings.Contains(exits[0], "terminated") || exits[1] != "exit status 3" {
		t.Fatalf("exits %q", exits)
	}
	if again := StopProcesses(time.Second, ready); again[0] != exits[0] {
		t.Fatalf("second stop %q, first %q", again[0], exits[0])
	}
}

// A run's temporary files go when it succeeded, and stay, said where, when
// it failed or was asked to keep them.
func TestFinish(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		failed, keep, kept bool
		code               int
	}{{false, false, false, 0}, {true, false, true, 1}, {false, true, true, 0}} {
		dir := t.TempDir()
		var out strings.Builder
		if code := Finish(&out, "bench", dir, tc.failed, tc.keep); code != tc.code {
			t.Errorf("%+v: exit %d", tc, code)
		}
		_, err := os.Stat(dir)
		if kept := err == nil; kept != tc.kept || kept != strings.Contains(out.String(), dir) {
			t.Errorf("%+v: kept %t, said %q", tc, kept, out.String())
		}
	}
	if Seed(7) != 7 || Seed(0) == 0 {
		t.Error("Seed keeps a given seed and draws one for 0")
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "new", "dir", "r.json")
	if err := WriteJSON(path, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"a\": 1\n}\n"; string(got) != want {
		t.Errorf("got %q; want %q", got, want)
	}
}
