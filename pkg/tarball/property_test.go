package tarball_test

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackRoundTripsRandomTrees unpacks archives of generated directories
// and compares them with an independent reading of the directory: the same
// paths, kinds, contents, link targets and executable bits. Seeds are fixed
// so a failure reproduces.
func TestPackRoundTripsRandomTrees(t *testing.T) {
	t.Parallel()
	for seed := range uint64(24) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			randomTree(t, rand.New(rand.NewPCG(seed, 0x7a6)), dir)

			a := mustPack(t, dir)
			got := make(map[string]member)
			for _, m := range unpack(t, a.Data) {
				got[strings.TrimSuffix(m.Name, "/")] = m
			}
			want := readTree(t, dir)

			if len(got) != len(want) {
				t.Errorf("archive has %d entries, directory %d", len(got), len(want))
			}
			files := 0
			for name, w := range want {
				g, ok := got[name]
				if !ok {
					t.Errorf("%s: missing from the archive", name)
					continue
				}
				if g.Type != w.Type || g.Content != w.Content || g.Linkname != w.Linkname || g.Mode != w.Mode {
					t.Errorf("%s: archive has type %q mode %o link %q and %d bytes; directory has type %q mode %o link %q and %d bytes",
						name, g.Type, g.Mode, g.Linkname, len(g.Content), w.Type, w.Mode, w.Linkname, len(w.Content))
				}
				if w.Type != tar.TypeDir {
					files++
				}
			}
			if a.Files != files {
				t.Errorf("Files = %d, want %d", a.Files, files)
			}
		})
	}
}

// randomTree fills dir with directories, files of random size, executable
// bit and permissions, and symlinks to earlier files. Names include
// characters that sort around '/' and names longer than USTAR's 100 bytes.
func randomTree(t *testing.T, r *rand.Rand, dir string) {
	t.Helper()
	special := []string{"a", "a-b", "a.b", "a b", "ünï", "Z", strings.Repeat("long", 30)}
	dirs := []string{"."}
	var files []string
	seen := map[string]bool{}
	for range 10 + r.IntN(40) {
		parent := dirs[r.IntN(len(dirs))]
		var base string
		if r.IntN(3) == 0 {
			base = special[r.IntN(len(special))]
		} else {
			base = fmt.Sprintf("n%d", r.IntN(50))
		}
		name := filepath.Join(parent, base)
		if seen[name] {
			continue
		}
		seen[name] = true
		p := filepath.Join(dir, name)
		switch k := r.IntN(10); {
		case k < 3:
			mkdirAll(t, p)
			dirs = append(dirs, name)
		case k < 9 || len(files) == 0:
			data := make([]byte, r.IntN(3000))
			for i := range data {
				data[i] = byte(r.IntN(256))
			}
			perm := []os.FileMode{0o644, 0o600, 0o755, 0o700, 0o444}[r.IntN(5)]
			if err := os.WriteFile(p, data, perm); err != nil {
				t.Fatal(err)
			}
			files = append(files, name)
		default:
			target, err := filepath.Rel(filepath.Dir(p), filepath.Join(dir, files[r.IntN(len(files))]))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// readTree reads dir as an archive would ideally hold it, using only the
// os package.
func readTree(t *testing.T, dir string) map[string]member {
	t.Helper()
	out := make(map[string]member)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			out[name] = member{Type: tar.TypeDir, Mode: 0o755}
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[name] = member{Type: tar.TypeSymlink, Mode: 0o777, Linkname: target}
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			mode := int64(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			out[name] = member{Type: tar.TypeReg, Mode: mode, Content: string(b)}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Pack must give the same bytes for a tree and for a copy built from its
// own archive, whatever order the copy was written in.
func TestPackOfUnpackedArchiveIsIdentical(t *testing.T) {
	t.Parallel()
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			src := t.TempDir()
			randomTree(t, rand.New(rand.NewPCG(seed, 0x51)), src)
			a := mustPack(t, src)

			dst := t.TempDir()
			ms := unpack(t, a.Data)
			// Reverse order: parents are made on demand, links last.
			for i := len(ms) - 1; i >= 0; i-- {
				m := ms[i]
				p := filepath.Join(dst, filepath.FromSlash(strings.TrimSuffix(m.Name, "/")))
				switch m.Type {
				case tar.TypeDir:
					mkdirAll(t, p)
				case tar.TypeReg:
					mkdirAll(t, filepath.Dir(p))
					if err := os.WriteFile(p, []byte(m.Content), fs.FileMode(m.Mode)); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, m := range ms {
				if m.Type == tar.TypeSymlink {
					if err := os.Symlink(m.Linkname, filepath.Join(dst, filepath.FromSlash(m.Name))); err != nil {
						t.Fatal(err)
					}
				}
			}
			if b := mustPack(t, dst); b.SHA1 != a.SHA1 {
				t.Errorf("repacked SHA-1 %s, want %s", b.SHA1, a.SHA1)
			}
		})
	}
}
