package tarball

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// DefaultMaxSize is the archive size limit when [WithMaxSize] is not given:
// 50 MiB, well above a source tree without dependencies or build output and
// low enough to catch a node_modules that slipped past the excludes.
const DefaultMaxSize int64 = 50 << 20

// Option configures [Pack].
type Option func(*config) error

type config struct {
	maxSize  int64
	excludes []string
	extra    []extraFile
}

type extraFile struct {
	name string
	data []byte
}

func newConfig(opts []Option) (*config, error) {
	cfg := &config{
		maxSize:  DefaultMaxSize,
		excludes: DefaultExcludes(),
	}
	for _, opt := range opts {
		if err := opt(cfg); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// WithMaxSize limits the size of the gzip'd archive to n bytes. Packing stops
// as soon as the limit is crossed and returns a [*TooLargeError], so memory
// stays bounded by about n however large the directory is.
// Defaults to [DefaultMaxSize].
func WithMaxSize(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("tarball: WithMaxSize(%d): the limit must be positive", n)
		}
		c.maxSize = n
		return nil
	}
}

// WithExclude sets the patterns of paths left out of the archive, replacing
// the defaults; to extend them, pass append(DefaultExcludes(), more...).
// When given more than once, the last call wins.
//
// Patterns use [path.Match] syntax on slash-separated paths relative to the
// packed directory. A pattern without a slash matches a file or directory of
// that name at any depth, like ".git" or "*.log"; a pattern with a slash
// matches the whole path from the top of the directory, like
// ".vercel/output". An excluded directory is skipped with everything in it.
// Files added with [WithFile] are never excluded.
// Defaults to [DefaultExcludes].
func WithExclude(patterns ...string) Option {
	return func(c *config) error {
		clean := make([]string, 0, len(patterns))
		for _, p := range patterns {
			q := strings.TrimSuffix(p, "/")
			if q == "" || strings.HasPrefix(q, "/") {
				return fmt.Errorf("tarball: WithExclude: pattern %q must be a non-empty relative path", p)
			}
			// path.Match reports a malformed pattern only when asked to match,
			// so probe it now rather than failing half-way through a walk.
			if _, err := path.Match(q, ""); err != nil {
				return fmt.Errorf("tarball: WithExclude: pattern %q: %w", p, err)
			}
			clean = append(clean, q)
		}
		c.excludes = clean
		return nil
	}
}

// DefaultExcludes returns the patterns [Pack] excludes when [WithExclude] is
// not given. Each is either rebuilt by the builder, machine-local noise that
// would change the digest without changing the app, or a secret:
//
//   - .git: history, not source; large, and old commits may hold secrets.
//   - node_modules: the builder installs dependencies from package.json; a
//     local copy is large and holds binaries built for the packing machine,
//     such as Prisma's query engine.
//   - .next: output and cache of a local next build; the builder rebuilds
//     it, and a stale cache could leak into the deployment.
//   - .vercel/output: a local vercel build result, stale prebuilt output.
//   - .DS_Store: macOS Finder metadata, rewritten when a folder is browsed.
//   - .env and .env.*: local environment files holding secrets (.env.local
//     and the like). A deployment's variables travel with the deploy request
//     and are set on the project, not shipped as files.
//
// .vercelsim is deliberately absent: the Vercel simulator reads its markers
// from there.
//
// The result is a new slice on every call, safe to append to.
func DefaultExcludes() []string {
	return []string{
		".git",
		"node_modules",
		".next",
		".vercel/output",
		".DS_Store",
		".env",
		".env.*",
	}
}

// WithFile adds a file named name holding data to the archive, as if it were
// in the directory with mode 0644. name is slash-separated and relative, as
// checked by [fs.ValidPath]; missing parent directories are added. The file
// replaces one of the same path from the directory and is never excluded.
// It lets callers add generated files, such as a marker for a test
// double, without writing into the source directory.
func WithFile(name string, data []byte) Option {
	// Copy so that a caller reusing its buffer cannot change an archive
	// after the option was built.
	data = append([]byte(nil), data...)
	return func(c *config) error {
		if !fs.ValidPath(name) || name == "." {
			return fmt.Errorf("tarball: WithFile(%q): the name must be a relative slash-separated path without . or .. elements", name)
		}
		c.extra = append(c.extra, extraFile{name: name, data: data})
		return nil
	}
}
