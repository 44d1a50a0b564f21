package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/deployq/deployq/internal/clip"
	"github.com/deployq/deployq/internal/pubpipe"
	"github.com/deployq/deployq/internal/streamget"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// SourceStore keeps source tarballs in the DEPLOY_SOURCES stream, in one
// subject tree per tenant and tarball:
//
//	deploy.sources.<tenant>.<sha1>.<n>     chunk n (0, 1, …), SourceChunkSize bytes at most
//	deploy.sources.<tenant>.<sha1>.meta    {"size":…,"chunks":…}, written after the chunks
//
// The tenant is a subject token, so NATS permissions give each tenant's
// user its own tree and nothing else: it can write and read back its own
// tarballs, and cannot see, overwrite, delete or purge another tenant's,
// nor point a worker at them (workers read the tree of the request's
// subject tenant). Every subject keeps its last message only, so writing
// a tarball again replaces it in place, and no producer ever needs to
// purge. Tarballs are content-addressed within a tenant: the same bytes
// submitted twice by one tenant are stored once; two tenants each store
// their own copy.
type SourceStore struct {
	nc *nats.Conn
	js jetstream.JetStream
	// leader reads from the stream leader (workers: a replica may lag the
	// producer's write); otherwise direct gets, which a tenant's user may
	// make for its own subjects.
	leader  bool
	timeout time.Duration
}

// SourceChunkSize is the size of a tarball's chunks.
const SourceChunkSize = 128 << 10

const sourcesPrefix = "deploy.sources."

// ErrSourceNotFound means no tarball of that SHA-1 is stored for the tenant.
var ErrSourceNotFound = errors.New("source tarball not stored")

// NewSourceStore returns the store of the DEPLOY_SOURCES stream (created by
// Setup) for producers: it reads with direct gets.
func NewSourceStore(js jetstream.JetStream) *SourceStore {
	return &SourceStore{nc: js.Conn(), js: js, timeout: js.Options().DefaultTimeout}
}

func newLeaderSourceStore(js jetstream.JetStream) *SourceStore {
	s := NewSourceStore(js)
	s.leader = true
	return s
}

// sourceSubject names one part ("meta" or a chunk number) of a tarball.
func sourceSubject(tenant, sha, part string) string {
	return sourcesPrefix + tenant + "." + sha + "." + part
}

// SourceInfo describes a stored tarball.
type SourceInfo struct {
	Tenant string `json:"-"`
	SHA1   string `json:"-"`
	Size   int64  `json:"size"`
	Chunks int    `json:"chunks"`
	// Stored is when the stream stored the tarball's meta, by the
	// server's clock; Seq is the meta's stream sequence.
	Stored time.Time `json:"-"`
	Seq    uint64    `json:"-"`
}

// Put stores data for tenant under name (its SHA-1 for a tarball a
// request names): the chunks, then the meta, so a meta that exists has
// its chunks.
func (s *SourceStore) Put(ctx context.Context, tenant, name string, data []byte) error {
	n := (len(data) + SourceChunkSize - 1) / SourceChunkSize
	msgs := make([]*nats.Msg, n)
	for i := range n {
		end := min((i+1)*SourceChunkSize, len(data))
		msgs[i] = &nats.Msg{Subject: sourceSubject(tenant, name, strconv.Itoa(i)), Data: data[i*SourceChunkSize : end]}
	}
	for _, r := range pubpipe.PublishAll(ctx, s.js, msgs, 64) {
		if r.Err != nil {
			return fmt.Errorf("store source tarball: %w", r.Err)
		}
	}
	meta, _ := json.Marshal(SourceInfo{Size: int64(len(data)), Chunks: n})
	if _, err := s.js.Publish(ctx, sourceSubject(tenant, name, "meta"), meta); err != nil {
		return fmt.Errorf("store source tarball: %w", err)
	}
	return nil
}

// Stat returns what is stored of a tarball, or ErrSourceNotFound.
func (s *SourceStore) Stat(ctx context.Context, tenant, sha string) (*SourceInfo, error) {
	m, err := s.get(ctx, sourceSubject(tenant, sha, "meta"))
	if err != nil {
		return nil, err
	}
	info := &SourceInfo{}
	if err := json.Unmarshal(m.Data, info); err != nil || info.Size < 0 || info.Chunks < 0 {
		return nil, fmt.Errorf("source tarball %s: unreadable meta", sha)
	}
	info.Tenant, info.SHA1, info.Stored, info.Seq = tenant, sha, m.Time, m.Seq
	return info, nil
}

// Open reads a stored tarball chunk by chunk; the reader ends after
// info.Chunks chunks, whatever their sizes, so bound it by the size the
// caller expects.
func (s *SourceStore) Open(ctx context.Context, info *SourceInfo) io.Reader {
	return &chunkReader{ctx: ctx, s: s, info: info}
}

// Delete removes a tarball's messages up to and including sequence upTo
// (0: all of them). A tarball written again meanwhile has higher
// sequences, so a clean-up that raced a re-upload deletes only the old
// copy.
func (s *SourceStore) Delete(ctx context.Context, tenant, sha string, upTo uint64) error {
	opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject(sourceSubject(tenant, sha, ">"))}
	if upTo > 0 {
		opts = append(opts, jetstream.WithPurgeSequence(upTo+1))
	}
	stream, err := s.js.Stream(ctx, StreamSources)
	if err != nil {
		return fmt.Errorf("delete source tarball: %w", err)
	}
	if err := stream.Purge(ctx, opts...); err != nil {
		return fmt.Errorf("delete source tarball: %w", err)
	}
	return nil
}

// List returns every stored tarball of every tenant (the janitor's view;
// a stream info, which tenants' users may not ask for).
func (s *SourceStore) List(ctx context.Context) ([]*SourceInfo, error) {
	stream, err := s.js.Stream(ctx, StreamSources)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(sourcesPrefix+"*.*.meta"))
	if err != nil {
		return nil, err
	}
	out := make([]*SourceInfo, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		parts := strings.Split(strings.TrimPrefix(subj, sourcesPrefix), ".")
		if len(parts) != 3 {
			continue
		}
		si, err := s.Stat(ctx, parts[0], parts[1])
		if errors.Is(err, ErrSourceNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return out, err
		}
		out = append(out, si)
	}
	return out, nil
}

// get reads the last message on subject: from the leader, or with a
// direct get (see SourceStore.leader).
func (s *SourceStore) get(ctx context.Context, subject string) (*streamget.Msg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	if s.leader {
		return streamget.Last(ctx, s.nc, StreamSources, subject, ErrSourceNotFound)
	}
	return streamget.Direct(ctx, s.nc, StreamSources, subject, ErrSourceNotFound)
}

// chunkReader reads a tarball's chunks in order.
type chunkReader struct {
	ctx  context.Context
	s    *SourceStore
	info *SourceInfo
	next int
	buf  []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.next >= r.info.Chunks {
			return 0, io.EOF
		}
		m, err := r.s.get(r.ctx, sourceSubject(r.info.Tenant, r.info.SHA1, strconv.Itoa(r.next)))
		if errors.Is(err, ErrSourceNotFound) {
			return 0, SourceErrorf(r.info.SHA1, "source_incomplete", "chunk %d of %d is not stored", r.next, r.info.Chunks)
		}
		if err != nil {
			return 0, err
		}
		r.buf, r.next = m.Data, r.next+1
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// SourceError is a source refused for good: the same tarball will always
// be refused, so the request is rejected without retries.
type SourceError struct {
	SHA1 string
	// Code is machine-readable: source_missing, source_size_mismatch,
	// source_too_large, source_sha1_mismatch, source_not_tgz,
	// source_unsafe_path, source_link, source_too_many_files,
	// source_unpacked_too_large, source_incomplete.
	Code   string
	Reason string
}

func (e *SourceError) Error() string {
	return "source tarball " + e.SHA1 + ": " + e.Reason
}

// SourceErrorf builds a SourceError; the reason is clipped, as it
// travels into events, dead letters and logs.
func SourceErrorf(sha, code, format string, args ...any) *SourceError {
	return &SourceError{SHA1: sha, Code: code, Reason: clip.String(fmt.Sprintf(format, args...), clip.Reason)}
}
