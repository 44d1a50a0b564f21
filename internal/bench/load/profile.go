package load

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
)

// profiler writes pprof profiles of one timed section. A nil profiler
// does nothing, so callers need not ask whether profiling was requested.
type profiler struct {
	cpuPath string // CPU profile; "" for none
	memPath string // heap profile at the end; "" for none
	cpu     *os.File
}

// newProfiler returns nil when no profile is asked for.
func newProfiler(cpuPath, memPath string) *profiler {
	if cpuPath == "" && memPath == "" {
		return nil
	}
	return &profiler{cpuPath: cpuPath, memPath: memPath}
}

// memBasePath is where the heap profile taken when the section starts
// goes: alloc_space counts from the start of the process, so the section's
// own allocations are the end profile minus this one (pprof -base).
func memBasePath(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-base" + ext
}

func (p *profiler) start() error {
	if p == nil {
		return nil
	}
	if p.memPath != "" {
		if err := writeHeap(memBasePath(p.memPath)); err != nil {
			return err
		}
	}
	if p.cpuPath != "" {
		f, err := create(p.cpuPath)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		p.cpu = f
	}
	return nil
}

func (p *profiler) stop() error {
	if p == nil {
		return nil
	}
	var errs []error
	if p.cpu != nil {
		pprof.StopCPUProfile()
		errs = append(errs, p.cpu.Close())
		p.cpu = nil
	}
	if p.memPath != "" {
		errs = append(errs, writeHeap(p.memPath))
	}
	return errors.Join(errs...)
}

// writeHeap writes a heap profile after a collection: the profile shows
// the heap as of the last completed one, and the section's last
// allocations must be in it.
func writeHeap(path string) error {
	runtime.GC()
	f, err := create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func create(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.Create(path)
}
