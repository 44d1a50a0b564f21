package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// WriteJSON writes v, indented, as the results file at path, making its
// directory if need be.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
