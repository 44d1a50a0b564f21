package tarball

import (
	"archive/tar"
	"compress/gzip"
	"time"
)

// What the archive records of each entry is fixed here, so that only paths,
// contents, link targets and the executable bit can change the digest.
const (
	// modTimeUnix, 1980-01-01T00:00:00Z, is every entry's mtime. The Unix
	// epoch would be as deterministic, but some tools read a zero time as
	// "missing", and 1980 is the earliest time a ZIP (DOS) timestamp holds,
	// so the files survive being re-archived as a zip.
	modTimeUnix = 315532800

	// modeDir and modeExec are kept apart from modeFile because scripts in
	// a source tree must stay runnable on the builder; any other permission
	// bits are local habit (umask, chmod 600) with no meaning there.
	modeDir     = 0o755
	modeExec    = 0o755
	modeFile    = 0o644
	modeSymlink = 0o777 // what Linux reports for every symlink

	// tarFormat is PAX so that long and non-ASCII names are stored exactly
	// instead of failing as in USTAR. Go writes a PAX record only when a
	// header needs one, and never a time or owner record here.
	tarFormat = tar.FormatPAX

	// gzipLevel is fixed because the level changes the bytes. The default
	// level compresses source text nearly as well as the best and faster.
	gzipLevel = gzip.DefaultCompression

	// gzipOS is "unknown" (255), as Go writes by default, stated so that
	// the bytes never depend on the machine that packs.
	gzipOS = 255
)

func modTime() time.Time { return time.Unix(modTimeUnix, 0).UTC() }

// entryKind is what an archive entry is.
type entryKind int

const (
	kindFile entryKind = iota
	kindDir
	kindSymlink
)

// entry is one archive member, gathered before anything is written so that
// the members can be sorted.
type entry struct {
	// name is slash-separated and relative, without a trailing slash.
	name   string
	kind   entryKind
	exec   bool
	size   int64
	target string
	// data holds a WithFile file's contents; disk files are read when
	// written, so the walk holds no contents.
	data    []byte
	virtual bool
}

// archiveName is the name stored in the tar header. Directories end in '/'
// as tar tools expect, and sorting by this name puts every directory before
// its contents.
func (e *entry) archiveName() string {
	if e.kind == kindDir {
		return e.name + "/"
	}
	return e.name
}

func (e *entry) header() *tar.Header {
	h := &tar.Header{
		Name:    e.archiveName(),
		ModTime: modTime(),
		Format:  tarFormat,
		// Uid, Gid, Uname and Gname stay zero and empty: the owner on the
		// packing machine means nothing on the builder.
	}
	switch e.kind {
	case kindDir:
		h.Typeflag = tar.TypeDir
		h.Mode = modeDir
	case kindSymlink:
		h.Typeflag = tar.TypeSymlink
		h.Mode = modeSymlink
		h.Linkname = e.target
	default:
		h.Typeflag = tar.TypeReg
		h.Mode = modeFile
		if e.exec {
			h.Mode = modeExec
		}
		h.Size = e.size
	}
	return h
}
