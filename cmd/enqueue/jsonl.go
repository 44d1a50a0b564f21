package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/deployq/deployq/pkg/jobs"
)

// fileLine is one line of a requests file. It is the request's JSON form
// with source as a path instead of an object-store reference.
type fileLine struct {
	ID        string            `json:"id"`
	Tenant    string            `json:"tenant"`
	Name      string            `json:"name"`
	Framework string            `json:"framework"`
	Source    string            `json:"source"`
	Region    string            `json:"region"`
	ReturnURL string            `json:"returnUrl"`
	Env       map[string]string `json:"env"`
	Priority  jobs.Priority     `json:"priority"`
	OverQuota jobs.OverQuota    `json:"overQuota"`
	App       string            `json:"app"`
}

// maxLineBytes bounds one line; a request is at most 64 KiB of JSON, so a
// longer line is a mistake (a file that is not JSONL) worth stopping on.
const maxLineBytes = 1 << 20

// readRequestsFile parses a JSONL file of requests into plans. It reads the
// whole file and returns every bad line, not just the first, so one run
// shows everything to fix. Sources are resolved against the file's
// directory, so the file works from any working directory.
func readRequestsFile(path string) ([]*plan, []error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, []error{err}
	}
	defer f.Close()
	return parseRequests(f, path, filepath.Dir(path))
}

func parseRequests(r io.Reader, name, dir string) ([]*plan, []error) {
	var plans []*plan
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, n)
		p, err := parseLine(text, dir)
		if err != nil {
			errs = append(errs, &planError{where: where, line: n, err: err})
			continue
		}
		p.where, p.line = where, n
		plans = append(plans, p)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line longer than %d bytes", maxLineBytes)
		}
		errs = append(errs, &planError{where: fmt.Sprintf("%s:%d", name, n+1), line: n + 1, err: err})
	}
	if len(plans) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: no requests in the file", name))
	}
	return plans, errs
}

func parseLine(text []byte, dir string) (*plan, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	// A typo such as "retrunUrl" must stop the batch, not be dropped.
	dec.DisallowUnknownFields()
	var l fileLine
	if err := dec.Decode(&l); err != nil {
		return nil, lineJSONError(err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value on the line")
	}
	if l.Source == "" {
		return nil, &jobs.ValidationError{Field: "source", Reason: "missing (a directory or .tgz file, relative to the requests file)"}
	}
	source := l.Source
	if !filepath.IsAbs(source) {
		source = filepath.Join(dir, filepath.FromSlash(source))
	}
	p := &plan{
		source: source,
		req: jobs.Request{
			ID: l.ID, Tenant: l.Tenant, Name: l.Name, Framework: l.Framework,
			Region: l.Region, ReturnURL: l.ReturnURL, Env: l.Env, Priority: l.Priority, OverQuota: l.OverQuota, App: l.App,
		},
	}
	if p.req.Name == "" {
		p.req.Name = defaultName(source)
	}
	return p, nil
}

// lineJSONError rewrites decoding errors in the request's own terms.
func lineJSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("not valid JSON: %s (byte %d)", strings.TrimPrefix(syn.Error(), "json: "), syn.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return errors.New("must be a JSON object")
	case errors.As(err, &typ):
		return &jobs.ValidationError{Field: typ.Field, Reason: "must be a JSON " + jsonKind(typ.Type.String()) + ", not " + typ.Value}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &jobs.ValidationError{Field: field, Reason: "unknown field (fields are id, tenant, name, framework, source, region, returnUrl, env, priority, overQuota, app)"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("not valid JSON: the object is cut short")
	}
	return fmt.Errorf("not valid JSON: %w", err)
}

func jsonKind(goType string) string {
	switch {
	case goType == "string":
		return "string"
	case strings.HasPrefix(goType, "map["):
		return "object of strings"
	}
	return goType
}
