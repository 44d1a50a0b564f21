package main

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"time"
)

// machine is where the figures were measured.
type machine struct {
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpuModel"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Date      string `json:"date"`
}

func thisMachine(now time.Time) machine {
	return machine{
		// NumCPU counts the CPUs this process may run on, as nproc does.
		NProc:     runtime.NumCPU(),
		CPUModel:  cpuModel("/proc/cpuinfo"),
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		Date:      now.UTC().Format(time.RFC3339),
	}
}

// cpuModel reads the first "model name" of a cpuinfo file; "unknown" where
// there is none (another OS, some ARM kernels).
func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown"
}
