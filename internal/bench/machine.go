package bench

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

// Machine describes where figures were measured: a reader comparing two
// results files needs it first, and the code measured (the code moves
// between runs).
type Machine struct {
	// NProc is what nproc says: the CPUs this process may run on, which
	// bound every figure.
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpuModel"`
	MemoryMB  int64  `json:"memoryMB"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Date      string `json:"date"`
	// Code is the commit measured, and whether tracked files differed
	// from it (CodeVersion).
	Code string `json:"code"`
}

// DescribeMachine describes this machine, at now.
func DescribeMachine(now time.Time) Machine {
	return Machine{
		NProc:     runtime.NumCPU(),
		CPUModel:  CPUModel(),
		MemoryMB:  memTotalMB("/proc/meminfo"),
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		Date:      now.UTC().Format(time.RFC3339),
		Code:      CodeVersion(),
	}
}

func (m Machine) String() string {
	mem := "memory unknown"
	if m.MemoryMB > 0 {
		mem = fmt.Sprintf("%d MB memory", m.MemoryMB)
	}
	return fmt.Sprintf("%d CPUs (nproc), %s, %s, %s %s/%s, measured %s, %s", m.NProc, m.CPUModel, mem, m.GoVersion, m.OS, m.Arch, m.Date, m.Code)
}

// memTotalMB reads MemTotal from /proc/meminfo; 0 when unknown.
func memTotalMB(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	kb, ok := StatusKB(data, "MemTotal")
	if !ok {
		return 0
	}
	return kb * 1024 / 1e6
}

// StatusKB reads a "Key:   123 kB" line, as /proc/meminfo and
// /proc/<pid>/status write them.
func StatusKB(data []byte, key string) (int64, bool) {
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

// CPUModel returns the first "model name" of /proc/cpuinfo, or "unknown"
// where there is none (another OS, some ARM kernels).
func CPUModel() string { return cpuModel("/proc/cpuinfo") }

func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// CodeVersion names the commit of the working directory and counts the
// tracked files changed since, from git; "unknown" without git. go run
// stamps no VCS information into the binary, so git is asked directly:
// the code moves between runs, and figures need to say which they measured.
func CodeVersion() string {
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
