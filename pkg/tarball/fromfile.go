package tarball

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// FromFile reads a .tgz or .tar.gz archive built elsewhere and returns it
// with its SHA-1, so that prebuilt sources deploy like packed ones. A
// maxSize of zero or less means [DefaultMaxSize]; a larger file gives a
// [*TooLargeError] without being read.
//
// Every entry is read to the end, because gzip's checksum is at the end of
// the stream and a truncated upload would otherwise only fail on the
// builder. Errors for a file that is not a complete gzip'd tar, or whose
// entries would unpack outside the target directory, wrap
// [ErrInvalidArchive]. The archive is not made deterministic: its bytes are
// used as they are.
func FromFile(filename string, maxSize int64) (*Archive, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	f, err := os.Open(filename)
	if err != nil {
		return nil, fmt.Errorf("tarball: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tarball: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("tarball: %s is not a regular file", filename)
	}
	if info.Size() > maxSize {
		return nil, &TooLargeError{Size: info.Size(), Limit: maxSize}
	}
	// The file may grow after Stat; reading one byte past the limit
	// notices without reading the rest.
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("tarball: %w", err)
	}
	if int64(len(data)) > maxSize {
		return nil, &TooLargeError{Size: int64(len(data)), Limit: maxSize}
	}
	files, err := check(data)
	if err != nil {
		return nil, fmt.Errorf("tarball: %s: %w: %w", filename, ErrInvalidArchive, err)
	}
	return newArchive(data, files), nil
}

// check reads a whole gzip'd tar archive and returns how many regular
// files, links and symlinks it holds.
func check(data []byte) (int, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	tr := tar.NewReader(zr)
	files := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		if escapes(h.Name) {
			return 0, fmt.Errorf("entry %q is outside the archive", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeLink, tar.TypeSymlink:
			files++
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			return 0, fmt.Errorf("entry %q is a device or pipe", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeLink:
			// Hard link targets are archive paths.
			if escapes(h.Linkname) {
				return 0, fmt.Errorf("hard link %q -> %q leads outside the archive", h.Name, h.Linkname)
			}
		case tar.TypeSymlink:
			if escapes(path.Join(path.Dir(h.Name), h.Linkname)) || path.IsAbs(h.Linkname) {
				return 0, fmt.Errorf("symlink %q -> %q leads outside the archive", h.Name, h.Linkname)
			}
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return 0, err
		}
	}
	// Drain to the end so gzip verifies its checksum and length trailer.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return 0, err
	}
	return files, nil
}

// escapes reports whether an archive path is absolute or climbs above the
// archive's top with "..".
func escapes(name string) bool {
	if path.IsAbs(name) {
		return true
	}
	clean := path.Clean(name)
	return clean == ".." || strings.HasPrefix(clean, "../")
}
