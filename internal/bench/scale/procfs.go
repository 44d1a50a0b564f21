package scale

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/deployq/deployq/internal/bench"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat. Linux fixes it
// at 100 for user space whatever the kernel's own tick rate, so it need
// not be asked for (which would take cgo's sysconf).
const userHZ = 100

// procMemory is a process's resident memory as /proc/<pid>/status tells it.
type procMemory struct {
	// RSS is VmRSS: resident now.
	RSS int64
	// HWM is VmHWM: the most that was ever resident (the peak, so it
	// includes the ramp-up before the sampling window).
	HWM int64
}

// parseStatusMemory reads VmRSS and VmHWM, in bytes, from the text of a
// /proc/<pid>/status file.
func parseStatusMemory(data []byte) (procMemory, error) {
	rss, ok1 := bench.StatusKB(data, "VmRSS")
	hwm, ok2 := bench.StatusKB(data, "VmHWM")
	if !ok1 || !ok2 {
		return procMemory{}, errors.New("no VmRSS or VmHWM line (a kernel thread, or not Linux)")
	}
	return procMemory{RSS: rss * 1024, HWM: hwm * 1024}, nil
}

// parseStatCPU returns the user plus system CPU time of the process
// whose /proc/<pid>/stat text is data. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so fields are
// counted from the last ')'; utime and stime are fields 14 and 15.
func parseStatCPU(data []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: CPU time %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// readProc reads a process's memory and CPU time.
func readProc(pid int) (procMemory, time.Duration, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMemory{}, 0, err
	}
	mem, err := parseStatusMemory(status)
	if err != nil {
		return procMemory{}, 0, err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procMemory{}, 0, err
	}
	cpu, err := parseStatCPU(stat)
	return mem, cpu, err
}
