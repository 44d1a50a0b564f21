package chaos

import "syscall"

// sysProcAttr makes a worker die with the test process, even when a test
// timeout ends it before its cleanups run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
