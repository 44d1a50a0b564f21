package budget

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/deployq/deployq/internal/bench"
)

// fleet is the worker processes of one strategy.
type fleet struct {
	procs   []*exec.Cmd
	stdins  []io.WriteCloser // closing one tells its process that the parent is gone
	done    []chan struct{}
	results []string
	once    sync.Once
}

// startWorkers starts the worker processes and returns once each has said
// it takes work.
func startWorkers(ctx context.Context, o options, rs runSetup, natsURL, simURL string, logFile *os.File) (*fleet, error) {
	f := &fleet{}
	ready := make(chan error, o.processes)
	for i := range o.processes {
		cmd := exec.Command(rs.exe, "budget",
			"-child",
			"-strategy", string(rs.strategy),
			"-nats-url", natsURL,
			"-sim-url", simURL,
			"-team-id", benchTeam,
			"-limits", o.limitSpec,
			"-concurrency", strconv.Itoa(o.concurrency),
			"-build-time", o.buildTime.String(),
			"-index", strconv.Itoa(i),
		)
		cmd.Stderr = logFile
		stdinW, stdoutR, err := bench.StartPiped(cmd)
		if err != nil {
			return f, fmt.Errorf("worker process: %w", err)
		}
		done := make(chan struct{})
		f.procs = append(f.procs, cmd)
		f.stdins = append(f.stdins, stdinW)
		f.done = append(f.done, done)
		f.results = append(f.results, "")
		go func() {
			defer stdoutR.Close()
			sc := bufio.NewScanner(stdoutR)
			if sc.Scan() && sc.Text() == readyLine {
				ready <- nil
			} else {
				ready <- errors.New("a worker process exited before taking work")
			}
			_, _ = io.Copy(io.Discard, stdoutR)
		}()
		go func() {
			err := cmd.Wait()
			f.results[i] = exitText(err)
			close(done)
		}()
	}
	timeout := time.NewTimer(readyTimeout)
	defer timeout.Stop()
	for range o.processes {
		select {
		case err := <-ready:
			if err != nil {
				return f, err
			}
		case <-timeout.C:
			return f, fmt.Errorf("worker processes not ready after %s", readyTimeout)
		case <-ctx.Done():
			return f, ctx.Err()
		}
	}
	return f, nil
}

// stop sends SIGTERM to every process and waits for them, killing those
// still running after stopTimeout. It reports how each ended; later calls
// return the same report.
func (f *fleet) stop() []string {
	if f == nil {
		return nil
	}
	f.once.Do(func() {
		for _, cmd := range f.procs {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		deadline := time.NewTimer(stopTimeout)
		defer deadline.Stop()
		late := false
		for i, done := range f.done {
			if !late {
				select {
				case <-done:
					continue
				case <-deadline.C:
					late = true
				}
			}
			select {
			case <-done:
			default:
				_ = f.procs[i].Process.Kill()
				<-done
				f.results[i] += " (killed after " + stopTimeout.String() + ")"
			}
		}
		for _, w := range f.stdins {
			w.Close()
		}
	})
	return f.results
}

// exitOK is how a worker process that shut down cleanly ended.
const exitOK = "exit 0"

func exitText(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	}
	return err.Error()
}
