package console

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAcceptsGzip(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]bool{
		"":                        false,
		"gzip":                    true,
		"gzip, deflate, br, zstd": true,
		"br;q=1.0, gzip;q=0.8":    true,
		"deflate, *":              true,
		"gzip;q=0":                false,
		"gzip; q=0.000, br":       false,
		"identity":                false,
		"x-gzip2":                 false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("%q: got %v, want %v", header, got, want)
		}
	}
}

func TestCompressedOnlyWhenAccepted(t *testing.T) {
	t.Parallel()
	doc := map[string]string{"a": string(bytes.Repeat([]byte("x"), 4096))}
	h := compressed(func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(doc) })

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/jobs", nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate")
	h(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" || rec.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatalf("headers %v: want gzip, varying by Accept-Encoding", rec.Header())
	}
	if rec.Body.Len() > 200 {
		t.Errorf("%d bytes: not compressed", rec.Body.Len())
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.NewDecoder(zr).Decode(&got); err != nil || got["a"] != doc["a"] {
		t.Fatalf("the body does not decode to what was written: %v", err)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Errorf("the gzip stream is not complete: %v", err)
	}

	rec = httptest.NewRecorder()
	h(rec, httptest.NewRequest(http.MethodGet, "/api/jobs", nil))
	if rec.Header().Get("Content-Encoding") != "" || !json.Valid(rec.Body.Bytes()) {
		t.Errorf("without Accept-Encoding: %v, want plain JSON", rec.Header())
	}
}
