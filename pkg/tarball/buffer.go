package tarball

import "bytes"

// limitBuffer collects the archive and refuses to grow past limit, so that
// packing a huge directory fails early instead of exhausting memory.
type limitBuffer struct {
	buf   bytes.Buffer
	limit int64
	// tooLarge is kept because tar and gzip writers may surface the write
	// error late (on Close) or wrapped; the caller reports this instead.
	tooLarge *TooLargeError
}

func (b *limitBuffer) Write(p []byte) (int, error) {
	if b.tooLarge != nil {
		return 0, b.tooLarge
	}
	if size := int64(b.buf.Len()) + int64(len(p)); size > b.limit {
		b.tooLarge = &TooLargeError{Size: size, Limit: b.limit}
		return 0, b.tooLarge
	}
	return b.buf.Write(p)
}

// fail returns the size error in place of err when the limit was crossed,
// whatever shape err took on its way up through the writers.
func (b *limitBuffer) fail(err error) error {
	if b.tooLarge != nil {
		return b.tooLarge
	}
	return err
}
