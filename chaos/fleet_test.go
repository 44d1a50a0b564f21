package chaos

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildWorker builds cmd/worker once for this test run and returns the
// binary's path. The module root comes from `go env GOMOD`, so the test
// works from any directory of the module.
func buildWorker(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build cmd/worker: %v", err)
	}
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("go env GOMOD names no go.mod: run the test inside the deployq module")
	}
	bin := filepath.Join(t.TempDir(), "worker")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/worker")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/worker: %v\n%s", err, out)
	}
	return bin
}

// proc is one worker process: one incarnation of a fleet slot.
type proc struct {
	slot, n int
	cmd     *exec.Cmd
	logPath string
	started time.Time
	// killed is set before the fleet kills or stops the process, so its
	// end is not taken for a crash.
	killed atomic.Bool
	done   chan struct{}
	err    error // cmd.Wait's result, once done is closed
}

func (p *proc) String() string {
	return fmt.Sprintf("worker %d (slot %d, pid %d)", p.n, p.slot, p.cmd.Process.Pid)
}

// exitCode is the process's exit status, -1 when a signal ended it.
func (p *proc) exitCode() int { return p.cmd.ProcessState.ExitCode() }

// fleet runs worker processes in numbered slots; killing a slot's process
// and starting the next incarnation in its place keeps the fleet's size.
type fleet struct {
	tb     testing.TB
	bin    string
	env    []string
	logDir string
	spawn  *spawner
	// exited receives every process once it has ended.
	exited chan *proc

	mu    sync.Mutex
	slots []*proc
	all   []*proc
}

func newFleet(tb testing.TB, bin string, env []string, size int) *fleet {
	f := &fleet{
		tb: tb, bin: bin, env: env,
		logDir: filepath.Join(artifactDir(tb), "workers"),
		spawn:  newSpawner(tb),
		// Generous: a process's waiter must never block on it.
		exited: make(chan *proc, 4096),
		slots:  make([]*proc, size),
	}
	if err := os.MkdirAll(f.logDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	// Cleanups run last-in first-out: the processes die before the
	// spawner's thread ends.
	tb.Cleanup(f.killAll)
	return f
}

// artifactDir keeps the worker logs with `go test -artifacts`; without the
// flag it is a temporary directory removed after the test.
func artifactDir(tb testing.TB) string {
	if t, ok := tb.(*testing.T); ok {
		return t.ArtifactDir()
	}
	return tb.TempDir()
}

// start starts a new worker process in slot.
func (f *fleet) start(slot int) (*proc, error) {
	f.mu.Lock()
	n := len(f.all) + 1
	f.mu.Unlock()
	logPath := filepath.Join(f.logDir, fmt.Sprintf("worker-%03d-slot%d.log", n, slot))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(f.bin)
	cmd.Env = f.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := f.spawn.start(cmd); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	p := &proc{slot: slot, n: n, cmd: cmd, logPath: logPath, started: time.Now(), done: make(chan struct{})}
	f.mu.Lock()
	f.slots[slot] = p
	f.all = append(f.all, p)
	f.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
		select {
		case f.exited <- p:
		default:
		}
	}()
	return p, nil
}

// current is the process running in slot.
func (f *fleet) current(slot int) *proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slots[slot]
}

// incarnations is the number of processes started so far.
func (f *fleet) incarnations() []*proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*proc(nil), f.all...)
}

// exitWait bounds the wait for a signalled process to be reaped.
const exitWait = 15 * time.Second

// kill SIGKILLs slot's process and waits until it is gone.
func (f *fleet) kill(slot int) error {
	p := f.current(slot)
	p.killed.Store(true)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		select {
		case <-p.done: // it had ended already
			return nil
		default:
		}
		return fmt.Errorf("kill %s: %w", p, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(exitWait):
		return fmt.Errorf("%s still running %s after SIGKILL", p, exitWait)
	}
}

// stop sends SIGTERM to every running process and waits up to grace for
// each to exit; those still running then are killed. It returns the
// processes that did not exit 0 on SIGTERM within grace.
func (f *fleet) stop(grace time.Duration) []*proc {
	f.mu.Lock()
	running := append([]*proc(nil), f.slots...)
	f.mu.Unlock()
	for _, p := range running {
		p.killed.Store(true)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	var bad []*proc
	timer := time.NewTimer(grace)
	defer timer.Stop()
	expired := false
	for _, p := range running {
		if !expired {
			select {
			case <-p.done:
			case <-timer.C:
				expired = true
			}
		}
		select {
		case <-p.done:
			if p.exitCode() != 0 {
				bad = append(bad, p)
			}
		default:
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
			bad = append(bad, p)
		}
	}
	return bad
}

// killAll kills whatever still runs; it is the test's last word.
func (f *fleet) killAll() {
	for _, p := range f.incarnations() {
		select {
		case <-p.done:
			continue
		default:
		}
		p.killed.Store(true)
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(exitWait):
			f.tb.Errorf("%s survived SIGKILL", p)
		}
	}
	f.spawn.close()
}

// tail returns the last n lines of a log file, each cut to width bytes.
func tail(path string, n, width int) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return []string{"(" + err.Error() + ")"}
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, clip(sc.Text(), width))
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// grep returns the last n lines of every log that contain s, prefixed by
// the log's process number.
func (f *fleet) grep(s string, n, width int) []string {
	var out []string
	for _, p := range f.incarnations() {
		data, err := os.ReadFile(p.logPath)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if strings.Contains(line, s) {
				out = append(out, fmt.Sprintf("w%d: %s", p.n, clip(line, width)))
			}
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

func clip(s string, width int) string {
	if len(s) > width {
		return s[:width] + "…"
	}
	return s
}

// logReport names every worker log with its last lines, for a failure.
func (f *fleet) logReport(lines int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "worker logs in %s (keep them with go test -artifacts):\n", f.logDir)
	for _, p := range f.incarnations() {
		how := "running"
		select {
		case <-p.done:
			how = p.cmd.ProcessState.String()
			if p.killed.Load() {
				how += ", by the test"
			}
		default:
		}
		fmt.Fprintf(&b, "--- %s: %s (%s)\n", p, p.logPath, how)
		for _, l := range tail(p.logPath, lines, 400) {
			fmt.Fprintf(&b, "    %s\n", l)
		}
	}
	return b.String()
}

// spawner starts processes from one locked OS thread that lives as long
// as they may: on Linux a child's parent-death signal follows the thread
// that forked it, not the process, and must not fire while the test runs.
type spawner struct {
	reqs chan spawnReq
	once sync.Once
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func newSpawner(tb testing.TB) *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		// Never unlocked: the thread exits with the goroutine, after
		// every child is gone.
		runtime.LockOSThread()
		for r := range s.reqs {
			r.err <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	r := spawnReq{cmd: cmd, err: make(chan error, 1)}
	s.reqs <- r
	return <-r.err
}

func (s *spawner) close() { s.once.Do(func() { close(s.reqs) }) }

// startedMsg is what a worker logs once it takes work.
const startedMsg = `"msg":"worker started"`

// hasStarted reports whether the process logged that it takes work.
func (p *proc) hasStarted() bool {
	data, err := os.ReadFile(p.logPath)
	return err == nil && bytes.Contains(data, []byte(startedMsg))
}

// waitStarted polls p's log until it says the worker takes work, and
// reports false if the process ends first or timeout passes.
func waitStarted(p *proc, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		if p.hasStarted() {
			return true
		}
		select {
		case <-p.done:
			return p.hasStarted()
		case <-deadline.C:
			return false
		case <-poll.C:
		}
	}
}

// logCounts counts the lines of every worker log that carry each message.
func (f *fleet) logCounts(msgs ...string) map[string]int {
	n := make(map[string]int, len(msgs))
	for _, p := range f.incarnations() {
		data, err := os.ReadFile(p.logPath)
		if err != nil {
			continue
		}
		for _, m := range msgs {
			n[m] += bytes.Count(data, []byte(`"msg":"`+m+`"`))
		}
	}
	return n
}
