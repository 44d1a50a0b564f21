package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
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
