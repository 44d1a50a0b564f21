package load

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) this process has used so
// far. On a shared machine a neighbour steals wall time from a run, not
// CPU time, so CPU per job compares the two modes more steadily than
// jobs per second; everything measured runs in this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the CPU time every process on the machine has used since
// boot, from /proc/stat's first line (all but idle and iowait), so that a
// run can tell how much of the machine others took meanwhile.
func machineBusy() time.Duration {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range fields[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0
		}
		// idle and iowait; guest time is already counted in user.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	// The kernel counts in USER_HZ, 100 per second on every Linux ABI Go
	// supports.
	return time.Duration(busy) * (time.Second / 100)
}
