package vercelsim

import (
	"crypto/sha1"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// smallFileLimit is the size up to which a file's content is kept: enough
// for a fail-build marker deployed as a file of its own, small enough that
// ten thousand uploaded tarballs cost only their metadata.
const smallFileLimit = 4 << 10

// file is an uploaded file. Large contents are not kept: what a build will
// need of them (the fail-build marker) is read once, at upload.
type file struct {
	size      int64
	small     []byte // the content, when at most smallFileLimit bytes
	hasMarker bool   // a tarball holding FailBuildPath
	marker    string // that marker's trimmed content
}

type uploadBody struct {
	URLs []string `json:"urls"`
}

type emptyBody struct{}

// uploadFile stores a file under its SHA-1. The digest header is checked
// against the bytes, and the size against Content-Length (or x-now-size),
// as Vercel does; a file already held answers {} and one newly stored
// {"urls":[…]}.
func (s *Server) uploadFile(c *call) reply {
	h := c.r.Header
	digest := strings.ToLower(h.Get("x-vercel-digest"))
	if digest == "" {
		digest = strings.ToLower(h.Get("x-now-digest"))
	}
	if digest == "" {
		return badRequest("Missing `x-vercel-digest` header")
	}
	if !isSHA1Hex(digest) {
		return badRequest("Digest is not valid")
	}
	size := c.r.ContentLength
	if v := h.Get("x-now-size"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || (size >= 0 && n != size) {
			return badRequest("File size is not valid")
		}
		size = n
	}
	if size < 0 {
		return badRequest("Missing `Content-Length` header")
	}
	if size > s.cfg.MaxFileSize {
		return badRequest("File size is not valid")
	}
	data, err := io.ReadAll(io.LimitReader(c.r.Body, size+1))
	if err != nil || int64(len(data)) != size {
		return badRequest("File size is not valid")
	}
	sum := sha1.Sum(data)
	if hex.EncodeToString(sum[:]) != digest {
		return badRequest("Digest is not valid")
	}
	f := &file{size: size}
	if size <= smallFileLimit {
		f.small = data
	}
	f.marker, f.hasMarker = scanFailMarker(data)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.uploads++
	s.stats.uploadBytes += size
	if s.st.files[digest] != nil {
		return jsonReply(http.StatusOK, emptyBody{})
	}
	s.st.files[digest] = f
	return jsonReply(http.StatusOK, uploadBody{URLs: []string{"https://vercelsim.invalid/v2/files/" + digest}})
}

func isSHA1Hex(s string) bool {
	if len(s) != 2*sha1.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// HasFile reports whether a file with this SHA-1 (lowercase hex) was
// uploaded.
func (s *Server) HasFile(sha string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.files[strings.ToLower(sha)] != nil
}
