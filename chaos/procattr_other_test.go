//go:build !linux

package chaos

import "syscall"

// sysProcAttr has no parent-death signal to ask for outside Linux: the
// test's cleanups kill the workers.
func sysProcAttr() *syscall.SysProcAttr { return nil }
