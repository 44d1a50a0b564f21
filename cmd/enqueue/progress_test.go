package main

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal and returns its terminal side, as a
// shell's stdout would be.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { _ = ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pts.Close() })
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 100}); err != nil {
		t.Fatal(err)
	}
	return pts
}

// On a terminal, --wait draws the live table, in colour unless NO_COLOR
// is set; TERM=dumb, a pipe or --json give lines.
func TestDisplayFollowsTheTerminal(t *testing.T) {
	t.Parallel()
	pts := openPTY(t)
	reqs := []*tracked{{plan: &plan{}}}
	wait := batchOptions{cmd: "submit", verb: "submitted", wait: true}
	envWith := func(vars map[string]string) env {
		return env{getenv: func(k string) string { return vars[k] }, stdout: pts, stderr: pts}
	}
	tests := []struct {
		name  string
		vars  map[string]string
		opts  batchOptions
		table bool
		color bool
	}{
		{"terminal", nil, wait, true, true},
		{"NO_COLOR", map[string]string{"NO_COLOR": "1"}, wait, true, false},
		{"TERM=dumb", map[string]string{"TERM": "dumb"}, wait, false, false},
		{"without --wait", nil, batchOptions{cmd: "submit", verb: "submitted"}, false, false},
		{"--json", nil, batchOptions{cmd: "submit", wait: true, json: true}, false, false},
	}
	for _, tt := range tests {
		d := newDisplay(envWith(tt.vars), tt.opts, reqs)
		tty, isTable := d.(*ttyDisplay)
		if isTable != tt.table || (isTable && tty.color != tt.color) {
			t.Errorf("%s: got %T (colour %v); want the table %v, colour %v", tt.name, d, isTable && tty.color, tt.table, tt.color)
		}
	}
	// A pipe is no terminal.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if d := newDisplay(env{getenv: func(string) string { return "" }, stdout: w, stderr: w}, wait, reqs); func() bool { _, ok := d.(*ttyDisplay); return ok }() {
		t.Error("a pipe got the live table")
	}
}
