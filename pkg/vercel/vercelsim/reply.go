package vercelsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
)

// reply is a handler's answer. Handlers return it instead of writing, so
// that an ErrorAfter fault can replace a successful answer after the side
// effect happened.
type reply struct {
	status      int
	body        any    // encoded as JSON unless nil
	raw         []byte // sent as is when body is nil
	contentType string // for raw
	header      http.Header
	// stream, when set, writes a streamed body after the headers: the
	// answer's length is not known when it starts (see events.go).
	stream streamFunc
}

func jsonReply(status int, body any) reply { return reply{status: status, body: body} }

func noContent(status int) reply { return reply{status: status} }

func errorReply(status int, e apiError) reply {
	return reply{status: status, body: errorBody{Error: e}}
}

func badRequest(format string, args ...any) reply {
	return errorReply(http.StatusBadRequest, apiError{Code: "bad_request", Message: fmt.Sprintf(format, args...)})
}

func notFound(message string) reply {
	return errorReply(http.StatusNotFound, apiError{Code: "not_found", Message: message})
}

func conflict(message string) reply {
	return errorReply(http.StatusConflict, apiError{Code: "conflict", Message: message})
}

// errorBody is Vercel's error envelope: {"error":{"code":…,"message":…}},
// with extra members on some errors.
type errorBody struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Limit is a *rateLimitNotice on 429 and a *planLimitNotice on 402:
	// the two carry reset in different units.
	Limit        any      `json:"limit,omitempty"`
	Resource     string   `json:"resource,omitempty"`
	Missing      []string `json:"missing,omitempty"`
	InvalidToken bool     `json:"invalidToken,omitempty"`
	MissingToken bool     `json:"missingToken,omitempty"`
}

func writeReply(w http.ResponseWriter, rep reply) {
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	var data []byte
	switch {
	case rep.body != nil:
		var err error
		data, err = json.Marshal(rep.body)
		if err != nil {
			// Every body is a struct of plain fields; failing here is a
			// bug worth an answer that says so.
			rep.status = http.StatusInternalServerError
			data = []byte(`{"error":{"code":"internal_server_error","message":"vercelsim: cannot encode answer"}}`)
		}
		h.Set("Content-Type", "application/json; charset=utf-8")
	case rep.raw != nil:
		data = rep.raw
		h.Set("Content-Type", rep.contentType)
	}
	if data != nil {
		h.Set("Content-Length", strconv.Itoa(len(data)))
	}
	w.WriteHeader(rep.status)
	if data != nil {
		_, _ = w.Write(data)
	}
}

// maxJSONBody bounds request bodies other than uploads: a few kilobytes
// for most calls, more for a deployment listing thousands of files.
const maxJSONBody = 4 << 20

// decodeBody decodes a JSON request body into dst. When allowed is non-nil,
// a top-level member not in it is refused, as Vercel does for operations
// whose schema says additionalProperties: false. A nil reply means success.
func decodeBody(r *http.Request, allowed []string, dst any) *reply {
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxJSONBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			rep := errorReply(http.StatusRequestEntityTooLarge, apiError{Code: "bad_request", Message: "Request body is too large"})
			return &rep
		}
		rep := badRequest("Could not read the request body")
		return &rep
	}
	if len(bytes.TrimSpace(data)) == 0 {
		// An empty body is an empty object: the optional bodies (a transfer
		// request's) may be left out, and a required member is then
		// reported missing by the handler.
		data = []byte("{}")
	}
	if allowed != nil {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(data, &members); err != nil {
			rep := badRequest("Invalid JSON: the body must be an object")
			return &rep
		}
		for k := range members {
			if !slices.Contains(allowed, k) {
				rep := badRequest("Invalid request: should NOT have additional property `%s`.", k)
				return &rep
			}
		}
	}
	if err := json.Unmarshal(data, dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			rep := badRequest("Invalid request: `%s` should be %s.", typeErr.Field, jsonKind(typeErr.Type.Kind().String()))
			return &rep
		}
		rep := badRequest("Invalid JSON: %v", err)
		return &rep
	}
	return nil
}

// jsonKind names a Go kind the way a JSON schema error would.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}
