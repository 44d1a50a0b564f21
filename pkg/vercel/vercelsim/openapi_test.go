package vercelsim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// spec is Vercel's OpenAPI subset, adjusted for two defects of the
// document itself (not of the simulator):
//
//   - it uses oneOf where the alternatives overlap: GET /v13/deployments
//     offers a full view and a public view whose members are a subset of
//     the full one's, /v2/files offers {urls} and any object, routes offer
//     {src} and {src, continue, middleware}. Every real answer matches
//     several alternatives, which a strict oneOf rejects, so oneOf is read
//     as anyOf. To keep the check sharp, deployment answers are also
//     validated against the full view alone (fullDeployment).
//   - it refers to components/schemas/VercelBaseError without defining
//     it; it is defined here as the error envelope every Vercel error has.
type spec struct {
	doc            *openapi3.T
	fullDeployment *openapi3.Schema
	errorSchemas   map[string]*openapi3.Schema
	// streamEvent is the schema of one event of a streamed answer
	// (application/stream+json), and payloadEvent its first alternative,
	// the shape the simulator sends, checked alone for the same reason
	// as fullDeployment.
	streamEvent, payloadEvent *openapi3.Schema
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	data, err := os.ReadFile("testdata/openapi-subset.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	oneOfToAnyOf(raw)
	schemas := raw["components"].(map[string]any)["schemas"].(map[string]any)
	if _, ok := schemas["VercelBaseError"]; !ok {
		schemas["VercelBaseError"] = map[string]any{
			"type":     "object",
			"required": []any{"code", "message"},
			"properties": map[string]any{
				"code":    map[string]any{"type": "string"},
				"message": map[string]any{"type": "string"},
			},
		}
	}
	fixed, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(fixed)
	if err != nil {
		t.Fatalf("loading the OpenAPI subset: %v", err)
	}
	s := &spec{doc: doc, errorSchemas: map[string]*openapi3.Schema{}}
	get := doc.Paths.Find("/v13/deployments/{idOrUrl}").Get
	s.fullDeployment = get.Responses.Status(200).Value.Content.Get("application/json").Schema.Value.AnyOf[0].Value
	if s.fullDeployment.Description != "The deployment including both public and private information" {
		t.Fatalf("alternative 0 of GET /v13/deployments is %q, not the full view", s.fullDeployment.Description)
	}
	for name, ref := range doc.Components.Schemas {
		s.errorSchemas[name] = ref.Value
	}
	events := doc.Paths.Find("/v3/deployments/{idOrUrl}/events").Get
	s.streamEvent = events.Responses.Status(200).Value.Content.Get("application/stream+json").Schema.Value
	s.payloadEvent = s.streamEvent.AnyOf[0].Value
	if _, ok := s.payloadEvent.Properties["payload"]; !ok {
		t.Fatal("alternative 0 of a streamed event is not the shape with a payload")
	}
	return s
}

func oneOfToAnyOf(v any) {
	switch v := v.(type) {
	case map[string]any:
		if alts, ok := v["oneOf"].([]any); ok {
			delete(v, "oneOf")
			v["anyOf"] = alts
		}
		for _, child := range v {
			oneOfToAnyOf(child)
		}
	case []any:
		for _, child := range v {
			oneOfToAnyOf(child)
		}
	}
}

// oas drives the simulator with real requests and validates them and
// their answers against the spec.
type oas struct {
	t    *testing.T
	b    *bundle
	spec *spec
	seen map[string]bool // "METHOD path status" covered
}

// check sends req as an instance of the documented operation method+path
// and validates the answer. undocumented marks answers whose status the
// operation does not list (Vercel answers them anyway, e.g. 404 on an
// unknown project); their bodies are still checked against the error
// schemas.
func (o *oas) check(path string, req *http.Request, status int, undocumented bool) response {
	o.t.Helper()
	pathItem := o.spec.doc.Paths.Find(path)
	if pathItem == nil {
		o.t.Fatalf("%s is not in the spec", path)
	}
	op := pathItem.GetOperation(req.Method)
	if op == nil {
		o.t.Fatalf("%s %s is not in the spec", req.Method, path)
	}
	route := &routers.Route{Spec: o.spec.doc, Path: path, PathItem: pathItem, Method: req.Method, Operation: op}
	reqInput := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: pathParams(path, req.URL.Path),
		Route:      route,
		Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	// The requests are the test's own; validating them too makes sure the
	// simulator is driven the way Vercel documents.
	if status < 400 {
		if err := openapi3filter.ValidateRequest(o.t.Context(), reqInput); err != nil {
			o.t.Errorf("%s %s: request does not match the spec: %v", req.Method, path, err)
		}
	}
	r := o.b.send(o.t, req)
	if r.status != status {
		o.t.Fatalf("%s %s: status %d, want %d; body %s", req.Method, path, r.status, status, r.body)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqInput,
		Status:                 r.status,
		Header:                 r.header,
		Body:                   io.NopCloser(bytes.NewReader(r.body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: !undocumented, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(o.t.Context(), in); err != nil {
		o.t.Errorf("%s %s → %d: answer does not match the spec: %v\nbody: %s", req.Method, path, r.status, err, r.body)
	}
	if status >= 400 {
		o.checkError(req.Method+" "+path, r)
	}
	if strings.HasPrefix(path, "/v13/deployments") && status == 200 {
		o.checkFullDeployment(req.Method+" "+path, r)
	}
	o.seen[req.Method+" "+path+" "+http.StatusText(status)] = true
	return r
}

// checkStream sends req, a follow=1 request for deployment events whose
// build has ended (so the stream ends too), and validates every line of
// the answer as one event of application/stream+json. kin-openapi has no
// decoder for that media type, and registering one would change its
// global state under parallel tests, so the lines are checked here.
func (o *oas) checkStream(path string, req *http.Request) []map[string]any {
	o.t.Helper()
	pathItem := o.spec.doc.Paths.Find(path)
	route := &routers.Route{Spec: o.spec.doc, Path: path, PathItem: pathItem, Method: req.Method, Operation: pathItem.GetOperation(req.Method)}
	if err := openapi3filter.ValidateRequest(o.t.Context(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: pathParams(path, req.URL.Path), Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}); err != nil {
		o.t.Errorf("%s %s: request does not match the spec: %v", req.Method, path, err)
	}
	r := o.b.send(o.t, req)
	if r.status != 200 {
		o.t.Fatalf("%s %s: status %d; body %s", req.Method, path, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/stream+json") {
		o.t.Errorf("%s %s: Content-Type %q, want application/stream+json", req.Method, path, ct)
	}
	var events []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(string(r.body)), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			o.t.Fatalf("%s %s: line %q is not a JSON object: %v", req.Method, path, line, err)
		}
		for _, schema := range []*openapi3.Schema{o.spec.streamEvent, o.spec.payloadEvent} {
			if err := schema.VisitJSON(map[string]any(ev), openapi3.MultiErrors(), openapi3.VisitAsResponse()); err != nil {
				o.t.Errorf("%s %s: event does not match the spec: %v\nevent: %s", req.Method, path, err, line)
			}
		}
		events = append(events, ev)
	}
	o.seen[req.Method+" "+path+" stream"] = true
	return events
}

// checkError validates an error body against the spec's error schemas: the
// operations document error statuses without bodies, but the components
// describe Vercel's envelope.
func (o *oas) checkError(what string, r response) {
	o.t.Helper()
	name := "VercelBadRequestError"
	switch r.status {
	case 401, 403:
		name = "VercelForbiddenError"
	case 404:
		name = "VercelNotFoundError"
	case 429:
		name = "VercelRateLimitError"
	}
	var body any
	if err := json.Unmarshal(r.body, &body); err != nil {
		o.t.Errorf("%s → %d: error body is not JSON: %s", what, r.status, r.body)
		return
	}
	if err := o.spec.errorSchemas[name].VisitJSON(body, openapi3.MultiErrors()); err != nil {
		o.t.Errorf("%s → %d: error body does not match %s: %v\nbody: %s", what, r.status, name, err, r.body)
	}
}

func (o *oas) checkFullDeployment(what string, r response) {
	o.t.Helper()
	var body any
	if err := json.Unmarshal(r.body, &body); err != nil {
		o.t.Fatal(err)
	}
	if err := o.spec.fullDeployment.VisitJSON(body, openapi3.MultiErrors(), openapi3.VisitAsResponse()); err != nil {
		o.t.Errorf("%s: not the full deployment view: %v", what, err)
	}
}

// pathParams extracts the template's variables from a concrete path.
func pathParams(template, path string) map[string]string {
	params := map[string]string{}
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	for i, seg := range ts {
		if strings.HasPrefix(seg, "{") && i < len(ps) {
			params[strings.Trim(seg, "{}")] = ps[i]
		}
	}
	return params
}

func TestOpenAPIConformance(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{
		TeamID:             "team_oas",
		BuildTime:          10 * time.Second,
		DailyDeploymentCap: 4,
		RateLimits: map[vercel.Endpoint]vercelsim.Limit{
			vercel.EndpointCreateProject: {Requests: 4, Window: time.Minute},
		},
	})
	o := &oas{t: t, b: b, spec: loadSpec(t), seen: map[string]bool{}}
	const q = "?teamId=team_oas"
	jsonReq := func(method, path string, body any) *http.Request {
		return b.request(t, method, path+q, body)
	}

	// Projects.
	r := o.check("/v11/projects", jsonReq("POST", "/v11/projects", map[string]any{
		"name": "oas-app", "framework": "nextjs",
		"environmentVariables": []any{map[string]any{"key": "K", "value": "v", "target": []string{"production"}, "type": "plain"}},
	}), 200, false)
	projectID := r.json(t)["id"].(string)
	o.check("/v11/projects", jsonReq("POST", "/v11/projects", map[string]any{"name": "oas-bare"}), 200, false)
	o.check("/v11/projects", jsonReq("POST", "/v11/projects", map[string]any{"name": "oas-app"}), 409, false)
	o.check("/v11/projects", jsonReq("POST", "/v11/projects", map[string]any{"name": "Bad Name"}), 400, false)
	o.check("/v11/projects", jsonReq("POST", "/v11/projects", map[string]any{"name": "oas-limited"}), 429, false)
	noToken := jsonReq("POST", "/v11/projects", map[string]any{"name": "oas-x"})
	noToken.Header.Del("Authorization")
	o.check("/v11/projects", noToken, 401, false)
	otherTeam := b.request(t, "POST", "/v11/projects?teamId=team_other", map[string]any{"name": "oas-x"})
	o.check("/v11/projects", otherTeam, 403, false)
	o.check("/v9/projects/{idOrName}", jsonReq("GET", "/v9/projects/"+projectID, nil), 200, false)
	o.check("/v9/projects/{idOrName}", jsonReq("GET", "/v9/projects/oas-nope", nil), 404, true)

	// Files and deployments.
	src := source("oas")
	upload := func(data []byte, digest string) *http.Request {
		req := b.request(t, "POST", "/v2/files"+q, data)
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("x-vercel-digest", digest)
		return req
	}
	sha := sha1hex(src)
	body := deploymentBody("oas-app", sha, len(src))
	body["meta"] = map[string]string{"requestId": "req-1"}
	r = o.check("/v13/deployments", jsonReq("POST", "/v13/deployments", body), 400, false)
	if r.errorCode(t) != "missing_files" {
		t.Errorf("code %q, want missing_files", r.errorCode(t))
	}
	o.check("/v2/files", upload(src, sha), 200, false)
	o.check("/v2/files", upload(src, sha), 200, false)
	o.check("/v2/files", upload(src, sha1hex([]byte("x"))), 400, false)
	r = o.check("/v13/deployments", jsonReq("POST", "/v13/deployments", body), 200, false)
	okID := r.json(t)["id"].(string)

	failSrc := vercelsim.Tarball(map[string]string{vercelsim.FailBuildPath: "boom"})
	o.check("/v2/files", upload(failSrc, sha1hex(failSrc)), 200, false)
	r = o.check("/v13/deployments", jsonReq("POST", "/v13/deployments", deploymentBody("oas-app", sha1hex(failSrc), len(failSrc))), 200, false)
	failID := r.json(t)["id"].(string)
	stagingBody := deploymentBody("oas-bare", sha, len(src))
	stagingBody["target"] = "staging"
	o.check("/v13/deployments", jsonReq("POST", "/v13/deployments", stagingBody), 200, false)
	previewBody := deploymentBody("oas-bare", sha, len(src))
	delete(previewBody, "target")
	o.check("/v13/deployments", jsonReq("POST", "/v13/deployments", previewBody), 200, false)
	o.check("/v13/deployments", jsonReq("POST", "/v13/deployments", deploymentBody("oas-ghost", sha, len(src))), 404, false)
	o.check("/v13/deployments", jsonReq("POST", "/v13/deployments", deploymentBody("oas-app", sha, len(src))), 402, false)

	// Every state of the build, by id and by URL, and its events so far.
	events := "/v3/deployments/{idOrUrl}/events"
	for _, step := range []time.Duration{0, 1 * time.Second, 2 * time.Second, 10 * time.Second} {
		b.clock.Advance(step)
		for _, id := range []string{okID, failID} {
			o.check(events, jsonReq("GET", "/v3/deployments/"+id+"/events", nil), 200, false)
			r = o.check("/v13/deployments/{idOrUrl}", jsonReq("GET", "/v13/deployments/"+id, nil), 200, false)
		}
		o.check("/v6/deployments", jsonReq("GET", "/v6/deployments", nil), 200, false)
	}
	if r.json(t)["readyState"] != "ERROR" {
		t.Errorf("fail-build deployment: %v", r.json(t)["readyState"])
	}
	url := o.check("/v13/deployments/{idOrUrl}", jsonReq("GET", "/v13/deployments/"+okID, nil), 200, false).json(t)["url"].(string)
	o.check("/v13/deployments/{idOrUrl}", jsonReq("GET", "/v13/deployments/"+url, nil), 200, false)
	o.check("/v13/deployments/{idOrUrl}", jsonReq("GET", "/v13/deployments/dpl_nope", nil), 404, false)

	// Build events: the whole build as a stream, which ends with the
	// final state, and as an array.
	for id, final := range map[string]string{okID: "READY", failID: "ERROR"} {
		evs := o.checkStream(events, b.request(t, "GET", "/v3/deployments/"+id+"/events"+q+"&follow=1", nil))
		last, _ := evs[len(evs)-1]["payload"].(map[string]any)
		info, _ := last["info"].(map[string]any)
		if evs[len(evs)-1]["type"] != "deployment-state" || info["readyState"] != final {
			t.Errorf("events of %s end with %v, want deployment-state %s", id, evs[len(evs)-1], final)
		}
	}
	arr := o.check(events, b.request(t, "GET", "/v3/deployments/"+url+"/events"+q+"&follow=0&limit=2", nil), 200, false)
	if items := []any{}; json.Unmarshal(arr.body, &items) != nil || len(items) != 2 {
		t.Errorf("limit=2 gave %s", arr.body)
	}
	o.check(events, jsonReq("GET", "/v3/deployments/dpl_nope/events", nil), 404, true)
	o.check(events, b.request(t, "GET", "/v3/deployments/"+okID+"/events"+q+"&follow=2", nil), 400, false)
	o.check("/v6/deployments", b.request(t, "GET", "/v6/deployments"+q+"&projectId="+projectID+"&limit=1", nil), 200, false)
	o.check("/v6/deployments", b.request(t, "GET", "/v6/deployments"+q+"&projectId=oas-nope", nil), 404, false)
	o.check("/v6/deployments", b.request(t, "GET", "/v6/deployments"+q+"&limit=0", nil), 400, false)

	// Integration resources and connections.
	authz := b.do(t, "POST", "/v1/integrations/billing/authorization"+q, authorizeBody())
	want(t, authz, 200)
	st := b.do(t, "POST", "/v1/storage/stores/integration"+q, storeBody("oas-db", authzID(t, authz)))
	want(t, st, 200)
	storeID := st.json(t)["store"].(map[string]any)["id"].(string)
	resources := "/v1/installations/{integrationConfigurationId}/resources"
	o.check(resources, jsonReq("GET", "/v1/installations/"+configID+"/resources", nil), 200, false)
	connect := "/v1/integrations/installations/{integrationConfigurationId}/resources/{resourceId}/connections"
	connectPath := "/v1/integrations/installations/" + configID + "/resources/" + storeID + "/connections"
	o.check(connect, jsonReq("POST", connectPath, map[string]any{"projectId": projectID}), 201, false)
	o.check(connect, jsonReq("POST", connectPath, map[string]any{"projectId": projectID}), 409, true)
	o.check(connect, jsonReq("POST", connectPath, map[string]any{"projectId": "prj_nope"}), 404, false)
	o.check(connect, jsonReq("POST", connectPath, map[string]any{}), 400, false)
	o.check("/v9/projects/{idOrName}", jsonReq("GET", "/v9/projects/oas-app", nil), 200, false)

	// Claim codes and deletes.
	transfer := "/projects/{idOrName}/transfer-request"
	o.check(transfer, jsonReq("POST", "/projects/oas-app/transfer-request", map[string]any{"callbackUrl": "https://example.com"}), 200, false)
	o.check(transfer, jsonReq("POST", "/projects/oas-nope/transfer-request", map[string]any{}), 404, true)
	o.check("/v9/projects/{idOrName}", jsonReq("DELETE", "/v9/projects/"+projectID, nil), 204, false)
	o.check("/v9/projects/{idOrName}", jsonReq("DELETE", "/v9/projects/"+projectID, nil), 404, true)

	if len(o.seen) < 25 {
		t.Errorf("only %d operation/status pairs checked", len(o.seen))
	}
}
