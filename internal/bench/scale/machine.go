package scale

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/deployq/deployq/internal/bench"
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
		CPUModel:  bench.CPUModel(),
		MemoryMB:  memTotalMB("/proc/meminfo"),
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		Measured:  now.UTC().Format(time.RFC3339),
		Code:      bench.CodeVersion(),
	}
}

func (m machine) String() string {
	mem := "memory unknown"
	if m.MemoryMB > 0 {
		mem = fmt.Sprintf("%d MB memory", m.MemoryMB)
	}
	return fmt.Sprintf("%d CPUs (nproc), %s, %s, %s %s, measured %s, %s", m.CPUs, m.CPUModel, mem, m.GoVersion, m.Platform, m.Measured, m.Code)
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
