package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// machine describes where a part was measured; both parts carry their
// own, since either may be rerun alone.
type machine struct {
	// CPUs is what nproc says: the CPUs this process may run on.
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	MemoryMB  int64  `json:"memoryMB"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	Measured  string `json:"measured"`
	// Code is the commit measured, and whether tracked files differed
	// from it; the code moves between runs, so figures need it.
	Code string `json:"code"`
}

func describeMachine(now time.Time) machine {
	return machine{
		CPUs:      runtime.NumCPU(),
		CPUModel:  firstValue("/proc/cpuinfo", "model name"),
		MemoryMB:  memTotalMB("/proc/meminfo"),
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		Measured:  now.UTC().Format(time.RFC3339),
		Code:      codeVersion(),
	}
}

// codeVersion names the commit of the working directory and counts the
// tracked files changed since, from git; "unknown" without git. go run
// stamps no VCS information into the binary, so git is asked directly.
func codeVersion() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rev, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	out := "commit " + strings.TrimSpace(string(rev))
	status, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	if err != nil {
		return out
	}
	if lines := strings.TrimSpace(string(status)); lines != "" {
		out += fmt.Sprintf(" with %d tracked files changed", strings.Count(lines, "\n")+1)
	}
	return out
}

func (m machine) String() string {
	mem := "memory unknown"
	if m.MemoryMB > 0 {
		mem = fmt.Sprintf("%d MB memory", m.MemoryMB)
	}
	return fmt.Sprintf("%d CPUs (nproc), %s, %s, %s %s, measured %s, %s", m.CPUs, m.CPUModel, mem, m.GoVersion, m.Platform, m.Measured, m.Code)
}

// firstValue returns the value of the first "key : value" line of a
// /proc file with that key, or "unknown" (another OS, some ARM kernels).
func firstValue(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// memTotalMB reads MemTotal from /proc/meminfo; 0 when unknown.
func memTotalMB(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	kb, ok := statusKB(data, "MemTotal")
	if !ok {
		return 0
	}
	return kb * 1024 / 1e6
}

// statusKB reads a "Key:   123 kB" line, as /proc/meminfo and
// /proc/<pid>/status write them.
func statusKB(data []byte, key string) (int64, bool) {
	for line := range bytes.Lines(data) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || string(k) != key {
			continue
		}
		f := strings.Fields(string(v))
		if len(f) != 2 || f[1] != "kB" {
			return 0, false
		}
		var n int64
		if _, err := fmt.Sscan(f[0], &n); err != nil || n < 0 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
