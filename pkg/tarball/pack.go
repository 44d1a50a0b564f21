package tarball

import (
	"archive/tar"
	"cmp"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
)

// Pack archives the directory dir as a gzip'd tar and returns it with its
// SHA-1. The same directory contents always give the same bytes: see the
// package documentation for what is normalised.
//
// Entries are named by their slash-separated path relative to dir, with
// directories (ending in '/') before their contents; dir itself has no
// entry. Files matching the exclude patterns are left out (see
// [WithExclude]). Symlinks are stored as links if their target is relative
// and stays inside dir, otherwise Pack fails with a [*SymlinkError]; devices,
// sockets and pipes fail with a [*SpecialFileError]; an archive over the
// limit fails with a [*TooLargeError].
func Pack(dir string, opts ...Option) (*Archive, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("tarball: %w", err)
	}
	defer root.Close()

	byName, err := collect(root, dir, newMatcher(cfg.excludes))
	if err != nil {
		return nil, err
	}
	for _, f := range cfg.extra {
		if err := addExtra(byName, f); err != nil {
			return nil, err
		}
	}
	entries := slices.SortedFunc(maps.Values(byName), func(a, b *entry) int {
		return cmp.Compare(a.archiveName(), b.archiveName())
	})
	return write(root, entries, cfg.maxSize)
}

func write(root *os.Root, entries []*entry, maxSize int64) (*Archive, error) {
	out := &limitBuffer{limit: maxSize}
	zw, err := gzip.NewWriterLevel(out, gzipLevel)
	if err != nil {
		return nil, fmt.Errorf("tarball: %w", err)
	}
	// Name, Comment and ModTime stay empty: gzip would otherwise record
	// the packing machine's file name and clock.
	zw.Header = gzip.Header{OS: gzipOS}
	tw := tar.NewWriter(zw)

	files := 0
	for _, e := range entries {
		if err := writeEntry(tw, root, e); err != nil {
			return nil, out.fail(err)
		}
		if e.kind != kindDir {
			files++
		}
	}
	if err := tw.Close(); err != nil {
		return nil, out.fail(fmt.Errorf("tarball: %w", err))
	}
	if err := zw.Close(); err != nil {
		return nil, out.fail(fmt.Errorf("tarball: %w", err))
	}
	return newArchive(out.buf.Bytes(), files), nil
}

func writeEntry(tw *tar.Writer, root *os.Root, e *entry) error {
	if err := tw.WriteHeader(e.header()); err != nil {
		return fmt.Errorf("tarball: %s: %w", e.name, err)
	}
	if e.kind != kindFile {
		return nil
	}
	if e.virtual {
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("tarball: %s: %w", e.name, err)
		}
		return nil
	}
	f, err := root.Open(e.name)
	if err != nil {
		return fmt.Errorf("tarball: %w", err)
	}
	defer f.Close()
	// The header already holds the size seen by the walk; a file that
	// changed since would make the archive disagree with itself.
	if _, err := io.CopyN(tw, f, e.size); err != nil {
		if err == io.EOF {
			return fmt.Errorf("tarball: %s shrank while being packed", e.name)
		}
		return fmt.Errorf("tarball: %s: %w", e.name, err)
	}
	if n, _ := f.Read(make([]byte, 1)); n > 0 {
		return fmt.Errorf("tarball: %s grew while being packed", e.name)
	}
	return nil
}
