package load

import (
	"io"
	"path/filepath"
	"testing"
)

func TestParseFlagsDefaults(t *testing.T) {
	t.Parallel()
	o, err := parseFlags([]string{"-concurrency", "10", "-profile-dir", "prof"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.n != 2000 || o.rounds != 3 || o.warm != 20 {
		t.Errorf("n %d, k %d, warm-up %d; want 2000, 3 and 2 × concurrency", o.n, o.rounds, o.warm)
	}
	if o.cpuProfile != filepath.Join("prof", "queued-cpu.pprof") || o.memProfile != filepath.Join("prof", "queued-mem.pprof") {
		t.Errorf("profiles %q, %q", o.cpuProfile, o.memProfile)
	}
	if o.outDir != "docs/benchmarks" {
		t.Errorf("outdir %q", o.outDir)
	}
	if o.command != "go run ./cmd/bench load -concurrency 10 -profile-dir prof" {
		t.Errorf("command %q", o.command)
	}
}

func TestParseFlagsRefuses(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-n", "0"},
		{"-k", "0"},
		{"-raw-batch", "0"},
		{"-submit-goroutines", "0"},
		{"-submit-batch", "0"},
		{"-latency-load", "0"},
		{"-latency-build", "0s"},
		{"stray"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}
