package load

import (
	"runtime"
	"time"

	"github.com/deployq/deployq/internal/bench"
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
		CPUModel:  bench.CPUModel(),
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		Date:      now.UTC().Format(time.RFC3339),
	}
}
