package jobs

import (
	"errors"
	"strings"
	"testing"
)

func validRequestJSON() string {
	return `{"version":1,"id":"req-1","tenant":"acme","name":"todo-app","framework":"nextjs",
	"source":{"bucket":"DEPLOY_SOURCES","sha1":"0123456789abcdef0123456789abcdef01234567","size":1234},
	"region":"fra1","returnUrl":"https://acme.example/apps/1","env":{"FEATURE_X":"on"}}`
}

func TestLoneSurrogate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		`"a\ud83d\ude00b"`: false, // a pair: one emoji
		`"\\udc80"`:        false, // an escaped backslash, then text
		`"\u00e9"`:         false,
		`"\udc80"`:         true,
		`"\ud83dx"`:        true,
		`"\ud83d\u0041"`:   true,
		`"\ud83d"`:         true,
	} {
		if _, got := loneSurrogate([]byte(in)); got != want {
			t.Errorf("loneSurrogate(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestDecodeRequestValid(t *testing.T) {
	t.Parallel()
	r, err := DecodeRequest([]byte(validRequestJSON()), Limits{})
	if err != nil {
		t.Fatalf("DecodeRequest: %v", err)
	}
	if r.ID != "req-1" || r.Tenant != "acme" || r.Source.Size != 1234 || r.Env["FEATURE_X"] != "on" {
		t.Fatalf("decoded %+v", r)
	}
}

func TestDecodeRequestRejects(t *testing.T) {
	t.Parallel()
	edit := func(old, new string) string { return strings.Replace(validRequestJSON(), old, new, 1) }
	tests := []struct {
		name, data, field, reason string
	}{
		{"not json", "hello", "", "not valid JSON"},
		{"empty", "", "", "empty message"},
		{"array", "[1,2]", "", "must be a JSON"},
		{"trailing", validRequestJSON() + "{}", "", "trailing data"},
		{"unknown field", edit(`"region"`, `"retrunUrl":"x","region"`), "retrunUrl", "unknown field"},
		{"missing version", edit(`"version":1,`, ``), "version", "missing"},
		{"future version", edit(`"version":1`, `"version":2`), "version", "not supported"},
		{"version as string", edit(`"version":1`, `"version":"1"`), "version", "must be a JSON number"},
		{"missing id", edit(`"id":"req-1"`, `"id":""`), "id", "missing"},
		{"id with dot", edit(`"id":"req-1"`, `"id":"a.b"`), "id", "A-Z a-z 0-9"},
		{"tenant upper", edit(`"tenant":"acme"`, `"tenant":"ACME"`), "tenant", "a-z 0-9"},
		{"tenant wildcard", edit(`"tenant":"acme"`, `"tenant":"*"`), "tenant", "a-z 0-9"},
		{"name missing", edit(`"name":"todo-app"`, `"name":""`), "name", "missing"},
		{"name upper", edit(`"name":"todo-app"`, `"name":"Todo"`), "name", "lowercase"},
		{"name triple dash", edit(`"name":"todo-app"`, `"name":"a---b"`), "name", "---"},
		{"name ending in --", edit(`"name":"todo-app"`, `"name":"todo--"`), "name", "end in"},
		{"name long", edit(`"name":"todo-app"`, `"name":"`+strings.Repeat("a", 90)+`"`), "name", "at most 87"},
		{"framework", edit(`"framework":"nextjs"`, `"framework":"next"`), "framework", "not a Vercel framework"},
		{"sha", edit(`"sha1":"0123456789abcdef0123456789abcdef01234567"`, `"sha1":"XYZ"`), "source.sha1", "40 lowercase hex"},
		{"size zero", edit(`"size":1234`, `"size":0`), "source.size", "positive"},
		{"size big", edit(`"size":1234`, `"size":999999999`), "source.size", "more than"},
		{"no bucket", edit(`"bucket":"DEPLOY_SOURCES"`, `"bucket":""`), "source.bucket", "missing"},
		{"region", edit(`"region":"fra1"`, `"region":"europe"`), "region", "not a Prisma Postgres region"},
		{"region unknown", edit(`"region":"fra1"`, `"region":"xyz9"`), "region", "iad1, sfo1"},
		{"priority", edit(`"region"`, `"priority":"urgent","region"`), "priority", "not interactive or batch"},
		{"priority type", edit(`"region"`, `"priority":1,"region"`), "priority", "string"},
		{"overQuota", edit(`"region"`, `"overQuota":"drop","region"`), "overQuota", "not wait or reject"},
		{"other bucket", edit(`"bucket":"DEPLOY_SOURCES"`, `"bucket":"KV_DEPLOY_JOBS"`), "source.bucket", "must be DEPLOY_SOURCES"},
		{"name ends in --", edit(`"name":"todo-app"`, `"name":"todo--"`), "name", "must not end in '--'"},
		{"not utf-8", edit(`"on"`, "\"o\x80n\""), "", "not valid UTF-8"},
		{"lone surrogate", edit(`"on"`, `"o\udc80n"`), "", "surrogate"},
		{"high surrogate alone", edit(`"on"`, `"o\uD800\u0041"`), "", "surrogate"},
		{"env nul", edit(`"on"`, `"o\u0000n"`), "env", "NUL"},
		{"unknown field clipped", edit(`"region"`, `"`+strings.Repeat("x", 60000)+`":1,"region"`), strings.Repeat("x", 125) + "…", "unknown field"},
		{"return url http", edit(`https://acme.example`, `http://acme.example`), "returnUrl", "https"},
		{"return url relative", edit(`https://acme.example/apps/1`, `/apps/1`), "returnUrl", "absolute"},
		{"return url creds", edit(`https://acme.example`, `https://u:p@acme.example`), "returnUrl", "credentials"},
		{"env key", edit(`"FEATURE_X"`, `"1BAD"`), "env", "not a valid variable name"},
		{"env reserved", edit(`"FEATURE_X"`, `"DATABASE_URL"`), "env", "set by the database connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeRequest([]byte(tt.data), Limits{MaxSourceBytes: 1 << 20})
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("err = %v, want *ValidationError", err)
			}
			if verr.Field != tt.field || !strings.Contains(verr.Reason, tt.reason) {
				t.Fatalf("got field %q reason %q; want field %q reason containing %q", verr.Field, verr.Reason, tt.field, tt.reason)
			}
		})
	}
}

func TestDecodeRequestTooLarge(t *testing.T) {
	t.Parallel()
	big := strings.Replace(validRequestJSON(), `"on"`, `"`+strings.Repeat("x", 2000)+`"`, 1)
	_, err := DecodeRequest([]byte(big), Limits{MaxRequestBytes: 1000})
	var verr *ValidationError
	if !errors.As(err, &verr) || !strings.Contains(verr.Reason, "more than the 1000 allowed") {
		t.Fatalf("err = %v", err)
	}
}

func TestNamesAreDeterministicAndValid(t *testing.T) {
	t.Parallel()
	a := &Request{Tenant: "acme", ID: "req-1", Name: strings.Repeat("a", maxNameLen)}
	b := &Request{Tenant: "acme", ID: "req-1", Name: strings.Repeat("a", maxNameLen)}
	c := &Request{Tenant: "acme", ID: "req-2", Name: strings.Repeat("a", maxNameLen)}
	d := &Request{Tenant: "globex", ID: "req-1", Name: strings.Repeat("a", maxNameLen)}
	if ProjectName(a) != ProjectName(b) || StoreName(a) != StoreName(b) {
		t.Fatal("same id gave different names")
	}
	if ProjectName(a) == ProjectName(c) || StoreName(a) == StoreName(c) {
		t.Fatal("different ids gave the same name")
	}
	if ProjectName(a) == ProjectName(d) || StoreName(a) == StoreName(d) {
		t.Fatal("another tenant reusing an id got the same names: it could adopt this tenant's project")
	}
	if n := len(ProjectName(a)); n > 100 {
		t.Fatalf("project name is %d characters, Vercel allows 100", n)
	}
	if err := validateName(ProjectName(a)[:maxNameLen]); err != nil {
		t.Fatalf("derived name invalid: %v", err)
	}
}

func TestNewIDIsAValidID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		id := NewID()
		if !idPattern.MatchString(id) || len(id) != 36 || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(validRequestJSON()))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"version":1,"id":"x","tenant":"t","name":"n","source":{"bucket":"b","sha1":"0123456789abcdef0123456789abcdef01234567","size":1},"env":{"A":"b"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRequest(data, Limits{})
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error is not a *ValidationError: %v", err)
			}
			return
		}
		// Whatever decodes must be usable as subject tokens and KV keys.
		if strings.ContainsAny(r.ID+r.Tenant, ".*> \t\r\n") {
			t.Fatalf("accepted unsafe id/tenant %q/%q", r.ID, r.Tenant)
		}
		if len(ProjectName(&r)) > 100 {
			t.Fatalf("project name too long for %q", r.Name)
		}
	})
}
