package tarball

import (
	"errors"
	"fmt"
	"io/fs"
)

// ErrInvalidArchive is wrapped by [FromFile] errors for a file that is not a
// complete gzip'd tar archive, or that holds entries a builder must not
// unpack (absolute paths, paths or links leading outside the archive,
// device files).
var ErrInvalidArchive = errors.New("not a valid gzip'd tar archive")

// TooLargeError reports an archive over the size limit. Vercel refuses large
// uploads late and expensively, so the limit is enforced while packing.
type TooLargeError struct {
	// Size is the archive's size in bytes. [Pack] stops as soon as the
	// limit is crossed, so there Size is a lower bound; for [FromFile] it
	// is the file's size.
	Size int64
	// Limit is the maximum size in bytes that was in force.
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("tarball: archive of %s exceeds the %s limit; exclude build output and dependencies or raise the limit",
		formatSize(e.Size), formatSize(e.Limit))
}

// formatSize gives both units because a bare "50.0 MiB" cannot show why
// 52428801 bytes is over a 52428800-byte limit.
func formatSize(n int64) string {
	const mib = 1 << 20
	if n < mib {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/mib, n)
}

// SymlinkError reports a symlink [Pack] refuses to store. A link is kept only
// when its target is relative and resolves inside the source directory,
// because the builder unpacks the archive somewhere else and must not be led
// out of it.
type SymlinkError struct {
	// Path is the link's path on disk.
	Path string
	// Target is the link's target as read from disk.
	Target string
	// Reason says which check failed.
	Reason string
	// Err is the underlying resolution error, if any.
	Err error
}

func (e *SymlinkError) Error() string {
	msg := fmt.Sprintf("tarball: symlink %s -> %s: %s", e.Path, e.Target, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *SymlinkError) Unwrap() error { return e.Err }

// SpecialFileError reports a device, socket, named pipe or other file that
// is neither regular, a directory nor a symlink. Such files have no meaning
// in a deployment and reading a pipe could block forever, so [Pack] refuses
// them instead of skipping them silently.
type SpecialFileError struct {
	// Path is the file's path on disk.
	Path string
	// Mode holds the file's type bits.
	Mode fs.FileMode
}

func (e *SpecialFileError) Error() string {
	return fmt.Sprintf("tarball: %s: %s is not a regular file, directory or symlink; remove it or exclude it",
		e.Path, describeType(e.Mode))
}

func describeType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	default:
		return "irregular file"
	}
}
