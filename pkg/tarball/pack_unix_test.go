//go:build unix

package tarball_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/deployq/deployq/pkg/tarball"
)

func TestPackRejectsSpecialFiles(t *testing.T) {
	t.Parallel()
	dir := newTree(t, appFiles)
	fifo := filepath.Join(dir, "app", "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("cannot make a named pipe here: %v", err)
	}
	_, err := tarball.Pack(dir)
	var se *tarball.SpecialFileError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *SpecialFileError", err)
	}
	if se.Path != fifo || se.Mode&fs.ModeNamedPipe == 0 {
		t.Errorf("SpecialFileError = %+v, want the pipe's path and type", se)
	}
	if !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("message = %q, want the path and the kind of file", err)
	}

	// Excluding the pipe is the way out the message suggests.
	if _, err := tarball.Pack(dir, tarball.WithExclude("pipe")); err != nil {
		t.Errorf("with the pipe excluded: %v", err)
	}
}
