package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/deployq/deployq/pkg/tarball"
)

// sources packs each distinct source once: a file of requests usually
// deploys a few sources many times, and packing is the slow part of
// planning. Keys are absolute paths, so "./app" and "app" share an entry.
type sources struct {
	maxSize int64
	byPath  map[string]packed
}

type packed struct {
	archive *tarball.Archive
	err     error
}

func newSources(maxSize int64) *sources {
	return &sources{maxSize: maxSize, byPath: make(map[string]packed)}
}

// load returns the archive of a directory (packed deterministically, so
// the same tree always has the same SHA-1) or of a .tgz/.tar.gz file
// (used as it is).
func (s *sources) load(path string) (*tarball.Archive, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", path, err)
	}
	if p, ok := s.byPath[abs]; ok {
		return p.archive, p.err
	}
	a, err := s.pack(path, abs)
	s.byPath[abs] = packed{archive: a, err: err}
	return a, err
}

func (s *sources) pack(path, abs string) (*tarball.Archive, error) {
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("source %s: no such directory or file", path)
	case err != nil:
		return nil, fmt.Errorf("source %s: %w", path, err)
	case info.IsDir():
		a, err := tarball.Pack(abs, tarball.WithMaxSize(s.maxSize))
		var tooLarge *tarball.TooLargeError
		if errors.As(err, &tooLarge) {
			// Pack stops at the limit, so the size is only a lower bound;
			// and the limit is the workers', not one the user can raise.
			return nil, fmt.Errorf("source %s: packed, it exceeds the %s limit on a deploy's source; leave build output, dependencies and large data files out of the directory (.git, node_modules and .next are left out already)",
				path, formatBytes(tooLarge.Limit))
		}
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", path, err)
		}
		if a.Files == 0 {
			return nil, fmt.Errorf("source %s: no files to deploy (the directory is empty once .git, node_modules, .env* and the like are left out)", path)
		}
		return a, nil
	case isTarball(abs):
		a, err := tarball.FromFile(abs, s.maxSize)
		var tooLarge *tarball.TooLargeError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("source %s: the archive is %s, over the %s limit on a deploy's source",
				path, formatBytes(tooLarge.Size), formatBytes(tooLarge.Limit))
		}
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", path, err)
		}
		return a, nil
	}
	return nil, fmt.Errorf("source %s: must be a directory or a .tgz/.tar.gz file", path)
}

// formatBytes gives bytes exactly and, past a MiB, in MiB for reading.
func formatBytes(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
}

func isTarball(path string) bool {
	return strings.HasSuffix(path, ".tgz") || strings.HasSuffix(path, ".tar.gz")
}

// maxNameLen mirrors the limit jobs.Request.Validate enforces on names
// (Vercel's 100 characters, less the "-" and 12-digit suffix the worker
// appends); a default longer than that would be refused.
const maxNameLen = 87

// defaultName turns a source path into a valid project name, so that
// `submit --source ./My App` needs no --name: the base name (without
// .tgz/.tar.gz), lowercased, other characters and runs of '-' folded into
// one '-', trimmed to start with a letter or digit and to maxNameLen.
// A path with nothing usable gives "app".
func defaultName(path string) string {
	base := filepath.Base(path)
	if abs, err := filepath.Abs(path); err == nil {
		base = filepath.Base(abs) // "." names the current directory
	}
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".tgz"), ".tar.gz")
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_':
			b.WriteRune(r)
		case strings.HasSuffix(b.String(), "-"):
			// Folding every run keeps clear of the forbidden '---'.
		default:
			b.WriteByte('-')
		}
	}
	name := strings.TrimLeft(b.String(), "-._")
	if len(name) > maxNameLen {
		name = name[:maxNameLen]
	}
	name = strings.TrimRight(name, "-._")
	if name == "" {
		return "app"
	}
	return name
}
