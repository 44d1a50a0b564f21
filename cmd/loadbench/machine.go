package main

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"time"
)

// machine describes where the figures were measured; a reader comparing
// two results files needs it first.
type machine struct {
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpuModel"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Date      string `json:"date"`
}

func describeMachine(now time.Time) machine {
	return machine{
		// NumCPU is the CPUs this process may use, which is what nproc
		// prints and what bounds every figure here.
		NProc:     runtime.NumCPU(),
		CPUModel:  firstCPUModel("/proc/cpuinfo"),
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		Date:      now.UTC().Format(time.RFC3339),
	}
}

// firstCPUModel returns the first "model name" line of a cpuinfo file, or
// "unknown" when the file or the line is missing (not Linux, some ARM).
func firstCPUModel(path string) string {
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
