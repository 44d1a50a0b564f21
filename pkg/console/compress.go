package console

import (
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
)

// compressed answers with gzip when the caller accepts it. It wraps the
// routes that answer one whole document (the page, the JSON reads), not
// the event streams, whose lines must leave as they are written: a
// compressor would hold them back. JSON compresses about sevenfold, which
// matters to an operator on a phone.
func compressed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept-Encoding")
		if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
			next(w, r)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // the level is valid
		defer zw.Close()
		next(gzipResponse{ResponseWriter: w, body: zw}, r)
	}
}

// gzipResponse sends what a handler writes through the compressor.
type gzipResponse struct {
	http.ResponseWriter
	body *gzip.Writer
}

func (g gzipResponse) Write(p []byte) (int, error) { return g.body.Write(p) }

// acceptsGzip reads an Accept-Encoding header: gzip (or *) listed, and
// not refused with q=0.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if name = strings.TrimSpace(name); name != "gzip" && name != "*" {
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if q, err := strconv.ParseFloat(v, 64); err == nil && q == 0 {
				return false
			}
		}
		return true
	}
	return false
}
