//go:build !linux

package load

import "time"

// processCPU and machineBusy are measured on Linux only; elsewhere CPU per
// job and the share taken by other processes are reported as 0.
func processCPU() time.Duration  { return 0 }
func machineBusy() time.Duration { return 0 }
