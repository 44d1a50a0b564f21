package tarball

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// collect walks root and returns the entries to archive keyed by name,
// before WithFile files are merged in. Walking through root (an [os.Root])
// rather than by path means no lookup can be led outside dir, whatever
// symlinks or renames happen meanwhile.
func collect(root *os.Root, dir string, m matcher) (map[string]*entry, error) {
	entries := make(map[string]*entry)
	walk := func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("tarball: reading %s: %w", dir, err)
		}
		if name == "." {
			return nil
		}
		if m.excluded(name) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		osPath := filepath.Join(dir, filepath.FromSlash(name))
		switch t := d.Type(); {
		case t.IsDir():
			entries[name] = &entry{name: name, kind: kindDir}
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("tarball: %w", err)
			}
			entries[name] = &entry{
				name: name,
				kind: kindFile,
				exec: info.Mode().Perm()&0o111 != 0,
				size: info.Size(),
			}
		case t&fs.ModeSymlink != 0:
			target, err := root.Readlink(name)
			if err != nil {
				return fmt.Errorf("tarball: %w", err)
			}
			if err := checkSymlink(root, name, target); err != nil {
				err.Path = osPath
				return err
			}
			entries[name] = &entry{name: name, kind: kindSymlink, target: filepath.ToSlash(target)}
		default:
			return &SpecialFileError{Path: osPath, Mode: t}
		}
		return nil
	}
	if err := fs.WalkDir(root.FS(), ".", walk); err != nil {
		return nil, err
	}
	return entries, nil
}

// checkSymlink accepts a link only if its target is relative and resolves
// inside the root both lexically, which is how an unpacking tool sees it,
// and on disk, which also catches a path that climbs out through another
// link (a -> p/s/.. where p/s -> ..). A dangling link is refused because
// where it would lead cannot be checked.
func checkSymlink(root *os.Root, name, target string) *SymlinkError {
	fail := func(reason string, err error) *SymlinkError {
		return &SymlinkError{Target: target, Reason: reason, Err: err}
	}
	switch {
	case target == "":
		return fail("empty target", nil)
	case filepath.IsAbs(target) || path.IsAbs(filepath.ToSlash(target)):
		return fail("absolute target; the archive is unpacked elsewhere, so only relative targets keep pointing into the source", nil)
	}
	if resolved := path.Join(path.Dir(name), filepath.ToSlash(target)); !fs.ValidPath(resolved) {
		return fail("target is outside the source directory", nil)
	}
	_, err := root.Stat(name)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fail("target does not exist", nil)
	default:
		return fail("target does not resolve inside the source directory", err)
	}
}

// addExtra merges a WithFile file into entries, adding the directories that
// lead to it.
func addExtra(entries map[string]*entry, f extraFile) error {
	for p := path.Dir(f.name); p != "."; p = path.Dir(p) {
		e, ok := entries[p]
		switch {
		case !ok:
			entries[p] = &entry{name: p, kind: kindDir, virtual: true}
		case e.kind != kindDir:
			return fmt.Errorf("tarball: WithFile(%q): %s is not a directory in the source", f.name, p)
		}
	}
	if e, ok := entries[f.name]; ok && e.kind == kindDir {
		return fmt.Errorf("tarball: WithFile(%q): a directory of that name is in the source", f.name)
	}
	entries[f.name] = &entry{
		name:    f.name,
		kind:    kindFile,
		size:    int64(len(f.data)),
		data:    f.data,
		virtual: true,
	}
	return nil
}
