// Package tarball builds deterministic gzip'd tar archives of a source
// directory, the form in which deployq uploads an app's source to Vercel.
//
// Vercel stores uploaded files by their SHA-1 and skips the upload of a
// digest it already holds, so a source directory that always packs to the
// same bytes is uploaded once per team, however many times it is deployed or
// a deploy request is redelivered. Everything that could make two packs of
// the same source differ is therefore fixed rather than copied from the
// disk: entries are sorted by path, timestamps, owners and permission bits
// are normalised, and the tar format, gzip header and compression level are
// constant. Only paths, file contents, symlink targets and the executable bit
// reach the archive.
//
// The pieces:
//
//   - [Pack] walks a directory and returns an [Archive]: the bytes, their
//     SHA-1, size and file count. [WithExclude], [WithMaxSize] and
//     [WithFile] tune it.
//   - [FromFile] loads an archive built elsewhere, checking that it is a
//     complete gzip'd tar within the size limit.
//   - [SHA1Hex] is the digest Vercel expects in its x-vercel-digest header.
//
// Errors a caller can act on are typed: [*TooLargeError] when the archive
// would exceed the limit, [*SymlinkError] for a link that could point outside
// the source, [*SpecialFileError] for devices, sockets and pipes, and
// [ErrInvalidArchive] for a file that is not a complete gzip'd tar.
//
// The bytes are a function of the directory and of the Go release's
// compress/flate implementation. A toolchain whose compressor emits
// different bytes gives new digests, which costs one extra upload per
// source, never a wrong deployment.
package tarball
