package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StartPiped starts cmd with pipes to its stdin and from its stdout and
// returns this side's ends. The benchmarks' worker processes read their
// stdin to notice a parent that died (it closes) and report on stdout.
// The child's ends are closed here once it has them, so that a child
// exiting is seen as end of file.
func StartPiped(cmd *exec.Cmd) (stdin io.WriteCloser, stdout io.ReadCloser, err error) {
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		return nil, nil, err
	}
	cmd.Stdin, cmd.Stdout = stdinR, stdoutW
	err = cmd.Start()
	stdinR.Close()
	stdoutW.Close()
	if err != nil {
		stdinW.Close()
		stdoutR.Close()
		return nil, nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	return stdinW, stdoutR, nil
}

// Process is a worker process a benchmark started (the benchmark binary
// run again in a hidden mode), which says on its first line of output
// that it takes work.
type Process struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser // closing it tells the process that the parent is gone
	lines chan string    // the first line of output, once
	done  chan struct{}  // closed when the process has exited
	exit  string         // how it ended, once done is closed
	once  sync.Once
}

// ExitOK is how a worker process that shut down cleanly ended.
const ExitOK = "exit 0"

// StartProcess starts cmd with piped stdin and stdout (StartPiped) and
// follows it: Ready returns its first line, Stop ends it.
func StartProcess(cmd *exec.Cmd) (*Process, error) {
	stdin, stdout, err := StartPiped(cmd)
	if err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, stdin: stdin, lines: make(chan string, 1), done: make(chan struct{})}
	go func() {
		p.exit = exitText(cmd.Wait())
		close(p.done)
	}()
	go func() {
		defer stdout.Close()
		sc := bufio.NewScanner(stdout)
		line := ""
		if sc.Scan() {
			line = sc.Text()
		}
		p.lines <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return p, nil
}

// Ready waits up to timeout for the process's first line of output and
// returns it ("" when it exited without one).
func (p *Process) Ready(ctx context.Context, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-p.lines:
		return line, nil
	case <-t.C:
		return "", fmt.Errorf("the worker process is not ready after %s", timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// PID is the process's id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// StopProcesses sends SIGTERM to every process at once, waits up to
// timeout for all of them and kills those still running. It returns how
// each ended ("exit 0" when it shut down cleanly); stopping a process
// again returns the same.
func StopProcesses(timeout time.Duration, ps ...*Process) []string {
	for _, p := range ps {
		if p != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	late := false // the deadline passed: the rest are not waited for
	out := make([]string, len(ps))
	for i, p := range ps {
		if p == nil {
			continue
		}
		p.once.Do(func() {
			if !late {
				select {
				case <-p.done:
				case <-deadline.C:
					late = true
				}
			}
			select {
			case <-p.done:
			default:
				_ = p.cmd.Process.Kill()
				<-p.done
				p.exit += " (killed after " + timeout.String() + ")"
			}
			p.stdin.Close()
		})
		<-p.done
		out[i] = p.exit
	}
	return out
}

func exitText(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	}
	return err.Error()
}

// CommandLine is how to repeat a run, recorded with its results: "go run
// ./cmd/bench" and the words given, each quoted where a shell would
// split or expand it.
func CommandLine(words ...string) string {
	parts := []string{"go run ./cmd/bench"}
	for _, a := range words {
		if a == "" || strings.ContainsAny(a, " \t\"'*?$") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
