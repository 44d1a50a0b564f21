package tarball

import (
	"crypto/sha1"
	"encoding/hex"
)

// Archive is a gzip'd tar archive ready to upload.
type Archive struct {
	// Data is the gzip'd tar stream.
	Data []byte
	// SHA1 is the lowercase hex SHA-1 of Data, the key under which Vercel
	// stores the upload.
	SHA1 string
	// Size is len(Data), kept as int64 because the upload's Content-Length
	// header wants one.
	Size int64
	// Files counts the regular files and symlinks in the archive;
	// directories are not counted.
	Files int
}

func newArchive(data []byte, files int) *Archive {
	return &Archive{
		Data:  data,
		SHA1:  SHA1Hex(data),
		Size:  int64(len(data)),
		Files: files,
	}
}

// SHA1Hex returns the lowercase hex SHA-1 of b. Vercel addresses uploaded
// files by this digest; SHA-1 is its choice, used here for identity, not
// security.
func SHA1Hex(b []byte) string {
	sum := sha1.Sum(b)
	return hex.EncodeToString(sum[:])
}
