package vercel

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
)

// SHA1Hex is the digest Vercel keys uploaded files by: lowercase hex SHA-1.
func SHA1Hex(data []byte) string {
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:])
}

// UploadFile uploads one file's bytes. Files are content-addressed per
// team, so uploading bytes Vercel already has is cheap and harmless; a 200
// with {} (already there) and a 200 with {"urls":[…]} both mean success.
// sha must be SHA1Hex(data): Vercel answers 400 otherwise.
//
// Vercel API: POST /v2/files (operation uploadFile,
// https://vercel.com/docs/rest-api/deployments/upload-deployment-files),
// raw bytes with Content-Type application/octet-stream, x-vercel-digest and
// Content-Length.
func (c *Client) UploadFile(ctx context.Context, sha string, data []byte) (*Response, error) {
	if sha == "" {
		return nil, &InvalidArgumentError{Endpoint: EndpointUploadFile, Argument: "sha", Reason: "must not be empty"}
	}
	if data == nil {
		// An empty file is valid; a nil body would send no Content-Length.
		data = []byte{}
	}
	r := request{
		ep:     EndpointUploadFile,
		method: http.MethodPost,
		path:   "/v2/files",
		body:   data,
		ctype:  "application/octet-stream",
		header: http.Header{"X-Vercel-Digest": {sha}},
	}
	return c.do(ctx, r, nil)
}
