package worker

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/deployq/deployq/internal/clip"
	"github.com/deployq/deployq/pkg/jobs"
)

// A request's source is checked before anything is created for it: a
// missing, oversized, mislabelled or hostile tarball is refused with a
// rejected event naming the reason, instead of failing at upload_source
// after a project and a database were made (and deleted again). The
// check reads the tarball as a stream, never whole: the stored size is
// compared with the declared one and the cap before the first byte is
// read, every read is bounded, and the unpacked size and file count are
// counted as the archive is walked, so a gzip bomb or a swapped object
// costs a bounded read, not the worker's memory.

// checkSource verifies the tarball ref names in tenant's store (see the
// note above). An error that is not a *SourceError is the store's, and
// transient.
func (p *Pipeline) checkSource(ctx context.Context, tenant string, ref jobs.SourceRef) error {
	lim := p.cfg.Limits
	info, err := p.sources.Stat(ctx, tenant, ref.SHA1)
	switch {
	case errors.Is(err, jobs.ErrSourceNotFound):
		return jobs.SourceErrorf(ref.SHA1, "source_missing", "not in tenant %s's %s store; upload it before publishing the request", tenant, jobs.BucketSources)
	case err != nil:
		return fmt.Errorf("look up source tarball: %w", err)
	case info.Size > lim.MaxSourceBytes:
		return jobs.SourceErrorf(ref.SHA1, "source_too_large", "stored tarball is %d bytes, more than the %d allowed", info.Size, lim.MaxSourceBytes)
	case info.Size != ref.Size:
		return jobs.SourceErrorf(ref.SHA1, "source_size_mismatch", "stored tarball is %d bytes; the request declares %d", info.Size, ref.Size)
	}
	// A tarball written again gets a new meta, at a new sequence: one
	// this pipeline has vetted already, unchanged since, needs no second
	// read. A class's three hundred deploys of one tarball read it once.
	key := tenant + "." + ref.SHA1 + "." + strconv.FormatUint(info.Seq, 10)
	return p.vetted.do(ctx, key, func() error { return p.readAndWalk(ctx, info, ref) })
}

// readAndWalk reads the tarball once, bounded, hashing it while walking
// the archive.
func (p *Pipeline) readAndWalk(ctx context.Context, info *jobs.SourceInfo, ref jobs.SourceRef) error {
	lim := p.cfg.Limits
	obj := p.sources.Open(ctx, info)
	// Chunks may have been written again since Stat: the read stops one
	// byte past the declared size.
	h := sha1.New()
	body := &countingReader{r: io.LimitReader(obj, ref.Size+1)}
	in := io.TeeReader(body, h)
	// A read error is the store's (transient), or a missing chunk (for
	// good); the archive's errors only count when the bytes came.
	readErr := func() error {
		var se *jobs.SourceError
		if errors.As(body.err, &se) {
			return se
		}
		return fmt.Errorf("read source tarball: %w", body.err)
	}
	if err := walkTarball(in, ref.SHA1, lim); err != nil {
		if body.err != nil {
			return readErr()
		}
		return err
	}
	if _, err := io.Copy(io.Discard, in); err != nil { // what follows the archive still counts
		return readErr()
	}
	switch {
	case body.n != ref.Size:
		return jobs.SourceErrorf(ref.SHA1, "source_size_mismatch", "stored tarball is not %d bytes", ref.Size)
	case hex.EncodeToString(h.Sum(nil)) != ref.SHA1:
		return jobs.SourceErrorf(ref.SHA1, "source_sha1_mismatch", "content does not match its SHA-1")
	}
	return nil
}

// walkTarball reads a gzip tar to its end and refuses what a deployment
// must not contain: paths that leave the archive, links, special files,
// and more files or unpacked bytes than lim allows.
func walkTarball(r io.Reader, sha string, lim jobs.Limits) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return jobs.SourceErrorf(sha, "source_not_tgz", "not a gzip stream: %v", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var files, unpacked int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return jobs.SourceErrorf(sha, "source_not_tgz", "not a tar archive: %v", err)
		}
		if reason := unsafePath(hdr.Name); reason != "" {
			return jobs.SourceErrorf(sha, "source_unsafe_path", "entry %q %s", clip.String(hdr.Name, clip.Field), reason)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		case tar.TypeSymlink, tar.TypeLink:
			return jobs.SourceErrorf(sha, "source_link", "entry %q is a link; deployments take regular files only", clip.String(hdr.Name, clip.Field))
		default:
			return jobs.SourceErrorf(sha, "source_unsafe_path", "entry %q is not a regular file or a directory (type %q)", clip.String(hdr.Name, clip.Field), hdr.Typeflag)
		}
		if files++; files > int64(lim.MaxSourceFiles) {
			return jobs.SourceErrorf(sha, "source_too_many_files", "more than %d files", lim.MaxSourceFiles)
		}
		// Counted as read, not as declared: a header may lie.
		n, err := io.Copy(io.Discard, io.LimitReader(tr, lim.MaxUnpackedBytes-unpacked+1))
		unpacked += n
		if unpacked > lim.MaxUnpackedBytes {
			return jobs.SourceErrorf(sha, "source_unpacked_too_large", "unpacks to more than %d bytes", lim.MaxUnpackedBytes)
		}
		if err != nil {
			return jobs.SourceErrorf(sha, "source_not_tgz", "entry %q: %v", clip.String(hdr.Name, clip.Field), err)
		}
	}
}

// unsafePath says why an archive entry's name may not be deployed, or
// "" when it may: it must be a relative path that stays inside the
// archive once cleaned.
func unsafePath(name string) string {
	switch {
	case name == "":
		return "has no name"
	case !utf8.ValidString(name) || strings.ContainsRune(name, 0):
		return "is not valid UTF-8"
	case strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || (len(name) > 1 && name[1] == ':'):
		return "is an absolute path"
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "leaves the archive"
	}
	return ""
}

// vettedSet remembers the tarballs (tenant, SHA-1 and meta sequence)
// whose content passed the check, up to maxVetted; past it the memory
// starts over. Jobs that need the same tarball checked at once (a batch
// of one template starting together) wait for one check instead of
// each reading it.
type vettedSet struct {
	mu   sync.Mutex
	ok   map[string]struct{}
	busy map[string]chan struct{}
}

const maxVetted = 4096

// do runs check for key unless it passed before, or waits for the run in
// progress and then looks again. A check that fails is not remembered:
// the next job runs its own (a store error may be gone by then, and a
// refusal is the job's own to report).
func (v *vettedSet) do(ctx context.Context, key string, check func() error) error {
	v.mu.Lock()
	if _, ok := v.ok[key]; ok {
		v.mu.Unlock()
		return nil
	}
	if wait, running := v.busy[key]; running {
		v.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		v.mu.Lock()
		_, ok := v.ok[key]
		v.mu.Unlock()
		if ok {
			return nil
		}
		return check() // it failed for that job: this one checks for itself
	}
	if v.busy == nil {
		v.busy = map[string]chan struct{}{}
	}
	done := make(chan struct{})
	v.busy[key] = done
	v.mu.Unlock()
	err := check()
	v.mu.Lock()
	delete(v.busy, key)
	if err == nil {
		if v.ok == nil || len(v.ok) >= maxVetted {
			v.ok = make(map[string]struct{})
		}
		v.ok[key] = struct{}{}
	}
	v.mu.Unlock()
	close(done)
	return err
}

// countingReader counts what it read and keeps the underlying reader's
// error, to tell a store failure from a broken archive.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = err
	}
	return n, err
}
