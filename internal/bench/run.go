package bench

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
)

// Seed is the simulator seed of a run: the one given, or a fresh one
// when 0 (the run records it, so a run can be repeated).
func Seed(given int64) int64 {
	if given != 0 {
		return given
	}
	return rand.Int64N(1<<62) + 1
}

// Finish ends a run that kept its temporary files in dir: they stay (and
// stderr says where) when the run failed or keep was asked, and go
// otherwise. It returns the run's exit code, 1 when it failed.
func Finish(stderr io.Writer, name, dir string, failed, keep bool) int {
	if failed || keep {
		fmt.Fprintf(stderr, "%s: temporary files kept in %s\n", name, dir)
	} else {
		_ = os.RemoveAll(dir)
	}
	if failed {
		return 1
	}
	return 0
}
