package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/deployq/deployq/internal/clip"
)

// Limits bound what a request may carry. They protect the worker and the
// Vercel team from input that would fail late or cost much.
type Limits struct {
	// MaxRequestBytes bounds the JSON request. Defaults to 64 KiB.
	MaxRequestBytes int
	// MaxSourceBytes bounds the source tarball. Defaults to 50 MiB.
	MaxSourceBytes int64
	// MaxSourceFiles bounds the files in a source tarball. Defaults to
	// 20 000.
	MaxSourceFiles int
	// MaxUnpackedBytes bounds a source tarball's files added up. Defaults
	// to 256 MiB.
	MaxUnpackedBytes int64
	// Regions are the database regions a request may ask for. Defaults
	// to PrismaRegions().
	Regions []string
}

// PrismaRegions returns the regions Prisma Postgres offers (us-east-1,
// us-west-1, eu-west-3, eu-central-1, ap-northeast-1, ap-southeast-1, as
// Prisma's regions API lists them), in Vercel's codes for those places.
// An unknown region fails at create_database after the project exists,
// so it is refused up front; a region added later needs Limits.Regions.
func PrismaRegions() []string { return []string{"iad1", "sfo1", "cdg1", "fra1", "hnd1", "sin1"} }

// DefaultLimits returns the limits used when none are configured.
func DefaultLimits() Limits {
	return Limits{MaxRequestBytes: 64 << 10, MaxSourceBytes: 50 << 20, MaxSourceFiles: 20000, MaxUnpackedBytes: 256 << 20, Regions: PrismaRegions()}
}

// WithDefaults fills the limits left zero from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = d.MaxRequestBytes
	}
	if l.MaxSourceBytes <= 0 {
		l.MaxSourceBytes = d.MaxSourceBytes
	}
	if l.MaxSourceFiles <= 0 {
		l.MaxSourceFiles = d.MaxSourceFiles
	}
	if l.MaxUnpackedBytes <= 0 {
		l.MaxUnpackedBytes = d.MaxUnpackedBytes
	}
	if len(l.Regions) == 0 {
		l.Regions = d.Regions
	}
	return l
}

// ValidationError says precisely why a request is refused. It is
// permanent: the same bytes will always be refused, so the worker rejects
// the message at once instead of redelivering it.
type ValidationError struct {
	Field  string // JSON field name, empty when the whole message is at fault
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "invalid request: " + e.Reason
	}
	return "invalid request: " + e.Field + ": " + e.Reason
}

func isBatchSubject(subject string) bool {
	_, _, batch, _ := requestSubjectParts(subject)
	return batch
}

// CheckSubject refuses a decoded request whose body disagrees with the
// subject it arrived on (RequestOrigin), or that arrived on a subject
// naming no valid tenant or id.
func (r *Request) CheckSubject(subject string) error {
	tenant, id := RequestOrigin(subject)
	switch {
	case tenant == "":
		return invalid("", "subject %s names no valid tenant; publish on deploy.requests.<tenant>.<id>", clip.String(subject, clip.Reason/2))
	case id == "":
		return invalid("", "subject %s names no valid request id; publish on deploy.requests.<tenant>.<id>", clip.String(subject, clip.Reason/2))
	case r.Tenant != tenant:
		return invalid("tenant", "%q does not match the subject's tenant %q", r.Tenant, tenant)
	case r.ID != id:
		return invalid("id", "%q does not match the subject's id %q", r.ID, id)
	case isBatchSubject(subject) && !r.Priority.Batch():
		// The subject's form is what dispatch goes by: the body must say
		// the same, so that the budget's order agrees with it.
		return invalid("priority", "must be batch on a batch request's subject (%s)", clip.String(subject, clip.Reason/2))
	}
	return nil
}

// invalid builds a ValidationError. Both parts are clipped: they quote
// the input (an unknown field's name, a bad value), which may be as large
// as a message, and the reason travels into events, dead letters and logs.
func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: clip.String(field, clip.Field), Reason: clip.String(fmt.Sprintf(format, args...), clip.Reason)}
}

var (
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	tenantPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	namePattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	envKeyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,255}$`)
	sha1Pattern   = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// maxNameLen leaves room for the "-" and suffix that NameFor appends within
// Vercel's 100-character limit.
const maxNameLen = 100 - 1 - nameSuffixLen

// frameworks are Vercel's framework preset slugs; a typo here would only
// surface as a failed build minutes later, so it is refused up front.
var frameworks = []string{
	"angular", "astro", "blitzjs", "create-react-app", "docusaurus-2",
	"eleventy", "ember", "express", "fastapi", "flask", "gatsby", "gridsome",
	"hexo", "hono", "hugo", "hydrogen", "jekyll", "nestjs", "nextjs",
	"nitro", "nuxtjs", "parcel", "preact", "react-router", "redwoodjs",
	"remix", "solidstart-1", "svelte", "sveltekit", "sveltekit-1", "umijs",
	"vite", "vitepress", "vue", "vuepress",
}

// reservedEnv are set on the project by the Prisma Postgres connection; a
// request that sets them would be silently overridden.
var reservedEnv = []string{"DATABASE_URL", "POSTGRES_URL", "PRISMA_DATABASE_URL"}

const (
	maxEnvVars     = 100
	maxEnvValueLen = 32 << 10
	maxURLLen      = 2048
)

// DecodeRequest parses and validates a published request. Unknown fields
// are refused so that a producer's typo ("retrunUrl") is reported instead
// of silently dropped.
func DecodeRequest(data []byte, limits Limits) (Request, error) {
	limits = limits.WithDefaults()
	if len(data) > limits.MaxRequestBytes {
		return Request{}, invalid("", "message is %d bytes, more than the %d allowed", len(data), limits.MaxRequestBytes)
	}
	// encoding/json turns invalid UTF-8 and lone surrogate escapes into
	// U+FFFD without a word: a value would reach the project changed.
	if !utf8.Valid(data) {
		return Request{}, invalid("", "not valid UTF-8")
	}
	if off, ok := loneSurrogate(data); ok {
		return Request{}, invalid("", "a \\u escape at byte %d is half of a UTF-16 surrogate pair, not a character", off)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Request
	if err := dec.Decode(&r); err != nil {
		return Request{}, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Request{}, invalid("", "trailing data after the JSON object")
	}
	if err := r.Validate(limits); err != nil {
		return Request{}, err
	}
	return r, nil
}

// loneSurrogate finds a \u escape of a UTF-16 surrogate (D800–DFFF)
// that is not a high one directly followed by a low one. Backslashes in
// valid JSON occur only in strings, each starting one escape, so a scan
// that skips escaped characters needs no idea of where strings are.
func loneSurrogate(data []byte) (int, bool) {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(data) || data[i] != '\\' || data[i+1] != 'u' {
			return 0, false
		}
		var r rune
		for _, c := range data[i+2 : i+6] {
			switch {
			case c >= '0' && c <= '9':
				r = r<<4 | rune(c-'0')
			case c >= 'a' && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case c >= 'A' && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			default:
				return 0, false
			}
		}
		return r, true
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		r, ok := hex4(i)
		switch {
		case !ok:
			i++ // an escaped character: skip it
		case r >= 0xD800 && r <= 0xDBFF:
			if lo, ok := hex4(i + 6); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return i, true
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return i, true
		default:
			i += 5
		}
	}
	return 0, false
}

func jsonError(err error) *ValidationError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return invalid("", "not valid JSON: %s at byte %d", syn.Error(), syn.Offset)
	case errors.As(err, &typ):
		return invalid(typ.Field, "must be a JSON %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.EOF):
		return invalid("", "empty message")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return invalid(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown field")
	}
	return invalid("", "not a JSON object: %s", err.Error())
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64":
		return "number"
	case "map", "struct":
		return "object"
	}
	return goKind
}

// Validate checks every field and returns the first problem as a
// *ValidationError. Fields are checked in schema order so the reason is
// stable for a given request.
func (r *Request) Validate(limits Limits) error {
	limits = limits.WithDefaults()
	if r.Version != RequestVersion {
		if r.Version == 0 {
			return invalid("version", "missing; this worker accepts version %d", RequestVersion)
		}
		return invalid("version", "version %d is not supported; this worker accepts version %d", r.Version, RequestVersion)
	}
	if !idPattern.MatchString(r.ID) {
		if r.ID == "" {
			return invalid("id", "missing")
		}
		return invalid("id", "must be 1 to 128 characters of A-Z a-z 0-9 _ -")
	}
	if r.App != "" && !idPattern.MatchString(r.App) {
		return invalid("app", "must be 1 to 128 characters of A-Z a-z 0-9 _ -")
	}
	if !tenantPattern.MatchString(r.Tenant) {
		if r.Tenant == "" {
			return invalid("tenant", "missing")
		}
		return invalid("tenant", "must be 1 to 63 characters of a-z 0-9 _ -, starting with a letter or digit")
	}
	if err := validateName(r.Name); err != nil {
		return err
	}
	if r.Framework != "" && !slices.Contains(frameworks, r.Framework) {
		return invalid("framework", "%q is not a Vercel framework preset (e.g. nextjs, vite, remix, astro)", r.Framework)
	}
	if err := validateSource(r.Source, limits.MaxSourceBytes); err != nil {
		return err
	}
	if r.Region != "" && !slices.Contains(limits.Regions, r.Region) {
		return invalid("region", "%q is not a Prisma Postgres region (%s)", r.Region, strings.Join(limits.Regions, ", "))
	}
	if r.ReturnURL != "" {
		if err := validateReturnURL(r.ReturnURL); err != nil {
			return err
		}
	}
	if err := validateEnv(r.Env); err != nil {
		return err
	}
	switch r.Priority {
	case "", PriorityInteractive, PriorityBatch:
	default:
		return invalid("priority", "%q is not interactive or batch", clip.String(string(r.Priority), 64))
	}
	switch r.OverQuota {
	case "", OverQuotaWait, OverQuotaReject:
		return nil
	}
	return invalid("overQuota", "%q is not wait or reject", clip.String(string(r.OverQuota), 64))
}

func validateName(name string) error {
	switch {
	case name == "":
		return invalid("name", "missing")
	case len(name) > maxNameLen:
		return invalid("name", "is %d characters; at most %d (a suffix derived from the id is added)", len(name), maxNameLen)
	case !namePattern.MatchString(name):
		return invalid("name", "must be lowercase letters, digits, '.', '_' and '-', starting with a letter or digit")
	case strings.Contains(name, "---"):
		return invalid("name", "must not contain '---'")
	case strings.HasSuffix(name, "--"):
		// The project name is name + "-" + a suffix: "--" would become
		// the "---" Vercel refuses, late, at create_project.
		return invalid("name", "must not end in '--' (the project name adds '-' and a suffix, and Vercel refuses '---')")
	}
	return nil
}

func validateSource(s SourceRef, max int64) error {
	switch {
	case s.Bucket == "":
		return invalid("source.bucket", "missing")
	case s.Bucket != BucketSources:
		// Workers read sources from one place only: a request cannot
		// point them at another bucket.
		return invalid("source.bucket", "must be %s", BucketSources)
	case !sha1Pattern.MatchString(s.SHA1):
		return invalid("source.sha1", "must be 40 lowercase hex digits")
	case s.Size <= 0:
		return invalid("source.size", "must be positive")
	case s.Size > max:
		return invalid("source.size", "tarball is %d bytes, more than the %d allowed", s.Size, max)
	}
	return nil
}

func validateReturnURL(raw string) error {
	if len(raw) > maxURLLen {
		return invalid("returnUrl", "longer than %d characters", maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return invalid("returnUrl", "must be an absolute URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1"):
	default:
		return invalid("returnUrl", "must use https (http only for localhost)")
	}
	if u.User != nil {
		return invalid("returnUrl", "must not carry credentials")
	}
	return nil
}

func validateEnv(env map[string]string) error {
	if len(env) > maxEnvVars {
		return invalid("env", "%d variables; at most %d", len(env), maxEnvVars)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys) // first error is stable across map orders
	for _, k := range keys {
		switch {
		case !envKeyPattern.MatchString(k):
			return invalid("env", "%q is not a valid variable name", k)
		case slices.Contains(reservedEnv, k):
			return invalid("env", "%s is set by the database connection and cannot be given", k)
		case len(env[k]) > maxEnvValueLen:
			return invalid("env", "value of %s is longer than %d bytes", k, maxEnvValueLen)
		case !utf8.ValidString(env[k]):
			// encoding/json would turn the bad bytes into U+FFFD: the
			// project would get another value than the one sent.
			return invalid("env", "value of %s is not valid UTF-8", k)
		case strings.ContainsRune(env[k], 0):
			return invalid("env", "value of %s contains a NUL character", k)
		}
	}
	return nil
}
