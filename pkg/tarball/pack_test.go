package tarball_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/tarball"
)

var appFiles = map[string]string{
	"package.json":         `{"name":"app"}`,
	"README.md":            "# app\n",
	"app/page.tsx":         "export default function Page() { return null }\n",
	"app/layout.tsx":       "export default function Layout() { return null }\n",
	"prisma/schema.prisma": "model Note { id Int @id }\n",
	"public/":              "",
}

func mustPack(t testing.TB, dir string, opts ...tarball.Option) *tarball.Archive {
	t.Helper()
	a, err := tarball.Pack(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestPackIsDeterministic(t *testing.T) {
	t.Parallel()
	first := newTree(t, appFiles)
	a := mustPack(t, first)
	b := mustPack(t, first)
	if !bytes.Equal(a.Data, b.Data) {
		t.Fatal("packing the same directory twice gave different bytes")
	}

	// A second copy, created in another place at another time and in
	// another order (map iteration), must still give the same bytes.
	second := newTree(t, appFiles)
	old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	for name := range appFiles {
		if err := os.Chtimes(filepath.Join(second, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if c := mustPack(t, second); c.SHA1 != a.SHA1 {
		t.Fatalf("copy of the directory: SHA-1 %s, want %s", c.SHA1, a.SHA1)
	}

	if a.SHA1 != tarball.SHA1Hex(a.Data) || len(a.SHA1) != 40 {
		t.Errorf("SHA1 = %q, want the hex SHA-1 of Data", a.SHA1)
	}
	if a.Size != int64(len(a.Data)) {
		t.Errorf("Size = %d, want %d", a.Size, len(a.Data))
	}
	if a.Files != 5 {
		t.Errorf("Files = %d, want 5", a.Files)
	}
}

func TestPackDigestDependsOnlyOnContent(t *testing.T) {
	t.Parallel()
	at := func(dir, name string) string { return filepath.Join(dir, filepath.FromSlash(name)) }
	chmod := func(name string, mode os.FileMode) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			if err := os.Chmod(at(dir, name), mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	touch := func(name string) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			when := time.Date(2030, 1, 1, 12, 0, 0, 123, time.UTC)
			if err := os.Chtimes(at(dir, name), when, when); err != nil {
				t.Fatal(err)
			}
		}
	}
	write := func(name, content string) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{name: content})
		}
	}
	tests := []struct {
		name   string
		change func(*testing.T, string)
		same   bool
	}{
		{"file chmod 600", chmod("README.md", 0o600), true},
		{"file chmod 640", chmod("app/page.tsx", 0o640), true},
		{"dir chmod 700", chmod("app", 0o700), true},
		{"file mtime", touch("package.json"), true},
		{"dir mtime", touch("app"), true},
		{"excluded file added", write("node_modules/next/index.js", "x"), true},
		{"Finder metadata added", write("app/.DS_Store", "x"), true},
		{"local secrets added", write(".env.local", "SECRET=1"), true},
		{"content changed", write("README.md", "# app!\n"), false},
		{"same size content changed", write("README.md", "# ppa\n"), false},
		{"file made executable", chmod("README.md", 0o755), false},
		{"file added", write("app/new.ts", ""), false},
		{"empty dir added", write("lib/", ""), false},
		{"marker added", write(".vercelsim/fail-build", "boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := newTree(t, appFiles)
			before := mustPack(t, dir)
			tt.change(t, dir)
			after := mustPack(t, dir)
			if got := before.SHA1 == after.SHA1; got != tt.same {
				t.Errorf("SHA-1 unchanged = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestPackNormalizesHeaders(t *testing.T) {
	t.Parallel()
	dir := newTree(t, map[string]string{
		"a-b":        "dash sorts before slash",
		"a/x.txt":    "x",
		"a/run.sh":   "#!/bin/sh\n",
		"a.txt":      "dot",
		"z/":         "",
		"secret.txt": "private",
	})
	if err := os.Chmod(filepath.Join(dir, "a", "run.sh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "secret.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a/x.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	ms := unpack(t, mustPack(t, dir).Data)

	want := []string{"a-b", "a.txt", "a/", "a/run.sh", "a/x.txt", "link", "secret.txt", "z/"}
	if got := names(ms); !slices.Equal(got, want) {
		t.Fatalf("entries = %q, want %q", got, want)
	}
	wantMode := map[string]int64{"a/": 0o755, "a/run.sh": 0o755, "link": 0o777, "z/": 0o755}
	epoch := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, m := range ms {
		h := m.Header
		mode, ok := wantMode[m.Name]
		if !ok {
			mode = 0o644
		}
		if h.Mode != mode {
			t.Errorf("%s: mode %o, want %o", m.Name, h.Mode, mode)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", m.Name, h.ModTime, epoch)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q, want 0:0 and empty names", m.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || len(h.PAXRecords) != 0 {
			t.Errorf("%s: unexpected atime, ctime or PAX records: %+v", m.Name, h)
		}
	}
	if l := byName(ms)["link"]; l.Type != tar.TypeSymlink || l.Linkname != "a/x.txt" {
		t.Errorf("link = type %q -> %q, want a symlink to a/x.txt", l.Type, l.Linkname)
	}
}

func TestPackGzipHeaderIsFixed(t *testing.T) {
	t.Parallel()
	a := mustPack(t, newTree(t, appFiles))
	zr, err := gzip.NewReader(bytes.NewReader(a.Data))
	if err != nil {
		t.Fatal(err)
	}
	if h := zr.Header; h.Name != "" || h.Comment != "" || !h.ModTime.IsZero() || h.OS != 255 || h.Extra != nil {
		t.Errorf("gzip header = %+v, want no name, comment, mtime or extra and OS 255", h)
	}
}

func TestPackExcludes(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"package.json":                   "{}",
		"app/page.tsx":                   "",
		".vercelsim/fail-build":          "boom",
		".vercel/project.json":           "{}",
		".envrc":                         "",
		"env.ts":                         "",
		"dist/index.js":                  "",
		"distx":                          "",
		"build.log":                      "",
		"app/debug.log":                  "",
		".git/HEAD":                      "ref: refs/heads/main",
		"node_modules/next/package.json": "{}",
		"app/node_modules/x.js":          "",
		".next/cache/webpack.pack":       "",
		".vercel/output/config.json":     "{}",
		".DS_Store":                      "",
		"app/.DS_Store":                  "",
		".env":                           "SECRET=1",
		".env.local":                     "SECRET=1",
		".env.production.local":          "SECRET=1",
		".env.example":                   "SECRET=",
		"app/.vercel/output/config.json": "{}",
	}
	tests := []struct {
		name string
		opts []tarball.Option
		want []string
	}{
		{
			name: "defaults",
			want: []string{
				".envrc", ".vercel/", ".vercel/project.json", ".vercelsim/", ".vercelsim/fail-build",
				"app/", "app/.vercel/", "app/.vercel/output/", "app/.vercel/output/config.json",
				"app/debug.log", "app/page.tsx", "build.log", "dist/", "dist/index.js", "distx",
				"env.ts", "package.json",
			},
		},
		{
			name: "custom patterns replace the defaults",
			opts: []tarball.Option{tarball.WithExclude("*.log", "dist/", "app/*.tsx", ".*")},
			want: []string{
				"app/", "app/node_modules/", "app/node_modules/x.js", "distx", "env.ts",
				"node_modules/", "node_modules/next/", "node_modules/next/package.json", "package.json",
			},
		},
		{
			name: "defaults extended",
			opts: []tarball.Option{tarball.WithExclude(append(tarball.DefaultExcludes(), "*.log", "dist", ".vercel")...)},
			want: []string{".envrc", ".vercelsim/", ".vercelsim/fail-build", "app/", "app/page.tsx", "distx", "env.ts", "package.json"},
		},
		{
			name: "last WithExclude wins",
			opts: []tarball.Option{tarball.WithExclude("app"), tarball.WithExclude(".*", "node_modules", "*.*", "dist*")},
			want: []string{"app/"},
		},
	}
	dir := newTree(t, files)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := names(unpack(t, mustPack(t, dir, tt.opts...).Data))
			if !slices.Equal(got, tt.want) {
				t.Errorf("entries = %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestPackWithFile(t *testing.T) {
	t.Parallel()
	dir := newTree(t, appFiles)
	marker := []byte(`Error: Command "npm run build" exited with 1`)
	a := mustPack(t, dir,
		tarball.WithFile(".vercelsim/fail-build", marker),
		tarball.WithFile("package.json", []byte(`{"name":"replaced"}`)),
		tarball.WithFile(".env", []byte("added files are never excluded")),
	)
	marker[0] = 'X' // the option must have kept its own copy

	ms := byName(unpack(t, a.Data))
	if got := ms[".vercelsim/fail-build"].Content; got != `Error: Command "npm run build" exited with 1` {
		t.Errorf("marker = %q", got)
	}
	if m, ok := ms[".vercelsim/"]; !ok || m.Type != tar.TypeDir {
		t.Error("the marker's directory was not added")
	}
	if got := ms["package.json"].Content; got != `{"name":"replaced"}` {
		t.Errorf("package.json = %q, want the WithFile contents", got)
	}
	if _, ok := ms[".env"]; !ok {
		t.Error(".env added with WithFile was excluded")
	}
	if want := len(appFiles) - 1 + 2; a.Files != want {
		t.Errorf("Files = %d, want %d", a.Files, want)
	}
	if b := mustPack(t, dir, tarball.WithFile(".vercelsim/fail-build", []byte("other"))); b.SHA1 == a.SHA1 {
		t.Error("different extra files gave the same SHA-1")
	}
}

func TestPackRejectsBadOptions(t *testing.T) {
	t.Parallel()
	dir := newTree(t, appFiles)
	tests := []struct {
		name string
		opt  tarball.Option
		want string
	}{
		{"zero max size", tarball.WithMaxSize(0), "must be positive"},
		{"negative max size", tarball.WithMaxSize(-1), "must be positive"},
		{"malformed pattern", tarball.WithExclude("["), "syntax error"},
		{"empty pattern", tarball.WithExclude(""), "non-empty relative"},
		{"absolute pattern", tarball.WithExclude("/etc"), "non-empty relative"},
		{"empty file name", tarball.WithFile("", nil), "relative slash-separated"},
		{"dot file name", tarball.WithFile(".", nil), "relative slash-separated"},
		{"escaping file name", tarball.WithFile("../x", nil), "relative slash-separated"},
		{"absolute file name", tarball.WithFile("/x", nil), "relative slash-separated"},
		{"trailing slash", tarball.WithFile("x/", nil), "relative slash-separated"},
		{"dot element", tarball.WithFile("a/./b", nil), "relative slash-separated"},
		{"file over a directory", tarball.WithFile("app", nil), "a directory of that name"},
		{"file under a file", tarball.WithFile("README.md/x", nil), "README.md is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tarball.Pack(dir, tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestPackRejectsMissingDirectory(t *testing.T) {
	t.Parallel()
	dir := newTree(t, appFiles)
	for _, p := range []string{filepath.Join(dir, "missing"), filepath.Join(dir, "README.md")} {
		if _, err := tarball.Pack(p); err == nil {
			t.Errorf("Pack(%s) succeeded", p)
		}
	}
}

func TestPackTooLarge(t *testing.T) {
	t.Parallel()
	// Random bytes do not compress, so the archive is at least this large.
	noise := make([]byte, 256<<10)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(noise)
	dir := newTree(t, map[string]string{"noise.bin": string(noise), "package.json": "{}"})

	const limit = 64 << 10
	_, err := tarball.Pack(dir, tarball.WithMaxSize(limit))
	var tle *tarball.TooLargeError
	if !errors.As(err, &tle) {
		t.Fatalf("err = %v, want a *TooLargeError", err)
	}
	if tle.Limit != limit || tle.Size <= limit {
		t.Errorf("TooLargeError = %+v, want Limit %d and a larger Size", tle, limit)
	}
	if msg := err.Error(); !strings.Contains(msg, "exceeds the 65536 bytes limit") {
		t.Errorf("message = %q", msg)
	}

	// The limit is inclusive: an archive of exactly the limit is fine.
	size := mustPack(t, dir).Size
	if _, err := tarball.Pack(dir, tarball.WithMaxSize(size)); err != nil {
		t.Errorf("limit equal to the size: %v", err)
	}
	if _, err := tarball.Pack(dir, tarball.WithMaxSize(size-1)); !errors.As(err, &tle) {
		t.Errorf("limit one byte under the size: err = %v, want a *TooLargeError", err)
	}
}

func TestTooLargeErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  tarball.TooLargeError
		want string
	}{
		{
			tarball.TooLargeError{Size: 2000, Limit: 1000},
			"tarball: archive of 2000 bytes exceeds the 1000 bytes limit; exclude build output and dependencies or raise the limit",
		},
		{
			tarball.TooLargeError{Size: 50<<20 + 1, Limit: 50 << 20},
			"tarball: archive of 50.0 MiB (52428801 bytes) exceeds the 50.0 MiB (52428800 bytes) limit; exclude build output and dependencies or raise the limit",
		},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q\nwant %q", got, tt.want)
		}
	}
}

func TestPackSymlinks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		links  map[string]string // link path -> target
		reason string            // empty when the pack must succeed
	}{
		{name: "to a file", links: map[string]string{"link": "README.md"}},
		{name: "to a directory", links: map[string]string{"lib": "app"}},
		{name: "up and back inside", links: map[string]string{"app/readme": "../README.md"}},
		{name: "to the top", links: map[string]string{"app/top": ".."}},
		{name: "escaping", links: map[string]string{"link": "../outside.txt"}, reason: "outside the source directory"},
		{name: "escaping from below", links: map[string]string{"app/link": "../../outside.txt"}, reason: "outside the source directory"},
		{name: "absolute", links: map[string]string{"link": "/etc/hostname"}, reason: "absolute target"},
		{name: "dangling", links: map[string]string{"link": "missing.txt"}, reason: "does not exist"},
		{
			// Lexically "x" is inside, but p/s is the top, so p/s/.. is above it.
			name:   "escaping through another link",
			links:  map[string]string{"p/s": "..", "l": "p/s/../outside.txt"},
			reason: "does not resolve inside",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			writeTree(t, parent, map[string]string{"outside.txt": "not part of the app"})
			dir := filepath.Join(parent, "src")
			writeTree(t, dir, appFiles)
			var failing string
			for link, target := range tt.links {
				p := filepath.Join(dir, filepath.FromSlash(link))
				mkdirAll(t, filepath.Dir(p))
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
				failing = p // the failing link is the only or the first-walked one
			}
			a, err := tarball.Pack(dir)
			if tt.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				ms := byName(unpack(t, a.Data))
				for link, target := range tt.links {
					if m := ms[link]; m.Type != tar.TypeSymlink || m.Linkname != target {
						t.Errorf("%s = type %q -> %q, want a symlink to %q", link, m.Type, m.Linkname, target)
					}
				}
				return
			}
			var se *tarball.SymlinkError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SymlinkError", err)
			}
			if len(tt.links) == 1 && se.Path != failing {
				t.Errorf("Path = %q, want %q", se.Path, failing)
			}
			if !strings.Contains(err.Error(), tt.reason) || !strings.Contains(err.Error(), se.Target) {
				t.Errorf("message = %q, want the target and %q", err, tt.reason)
			}
		})
	}
}

func TestSHA1Hex(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		{"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
	}
	for _, tt := range tests {
		if got := tarball.SHA1Hex([]byte(tt.in)); got != tt.want {
			t.Errorf("SHA1Hex(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
