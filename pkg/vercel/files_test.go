package vercel

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
)

func TestSHA1Hex(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		{"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
	}
	for _, tt := range tests {
		if got := SHA1Hex([]byte(tt.in)); got != tt.want {
			t.Errorf("SHA1Hex(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestUploadFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		data   []byte
		answer string
	}{
		{"new file, urls", []byte("tarball bytes \x00\x01\x02"), `{"urls":["example-upload.aws.com"]}`},
		{"known file, empty object", []byte("tarball bytes"), `{}`},
		{"empty file", []byte{}, `{}`},
		{"nil data", nil, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			sha := SHA1Hex(tt.data)
			b.mux.HandleFunc("POST /v2/files", func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodPost, "/v2/files", nil)
				if got := r.Header.Get("Content-Type"); got != "application/octet-stream" {
					t.Errorf("Content-Type = %q", got)
				}
				if got := r.Header.Get("x-vercel-digest"); got != sha {
					t.Errorf("x-vercel-digest = %q, want %s", got, sha)
				}
				if got := r.Header.Get("Content-Length"); got != strconv.Itoa(len(tt.data)) {
					t.Errorf("Content-Length header = %q, want %d", got, len(tt.data))
				}
				if r.ContentLength != int64(len(tt.data)) {
					t.Errorf("ContentLength = %d, want %d", r.ContentLength, len(tt.data))
				}
				body, _ := io.ReadAll(r.Body)
				if !bytes.Equal(body, tt.data) && !(len(body) == 0 && len(tt.data) == 0) {
					t.Errorf("body = %q, want %q", body, tt.data)
				}
				writeJSON(w, http.StatusOK, tt.answer)
			})
			resp, err := b.client.UploadFile(t.Context(), sha, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d", resp.StatusCode)
			}
		})
	}
}

func TestUploadFileBadDigest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("POST /v2/files", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusBadRequest, `{"error":{"code":"bad_request","message":"Digest is not valid"}}`)
	})
	_, err := b.client.UploadFile(t.Context(), "0000000000000000000000000000000000000000", []byte("x"))
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || ae.Message != "Digest is not valid" {
		t.Fatalf("err = %v, want the 400", err)
	}
	if d := Classify(err); d.Class != Permanent || d.Reason != ReasonBadRequest {
		t.Errorf("Classify = %+v", d)
	}
}
