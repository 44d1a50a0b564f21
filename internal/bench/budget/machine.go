package budget

import (
	"runtime"
	"time"

	"github.com/deployq/deployq/internal/bench"
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
		CPUModel:  bench.CPUModel(),
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		Date:      now.UTC().Format(time.RFC3339),
	}
}
