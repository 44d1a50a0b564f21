package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

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
