package vercelsim

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// createDeploymentMembers are the members POST /v13/deployments accepts;
// its schema says additionalProperties: false.
var createDeploymentMembers = []string{
	"customEnvironmentSlugOrId", "deploymentId", "files", "gitMetadata", "gitSource", "meta",
	"monorepoManager", "name", "project", "projectSettings", "target", "withLatestCommit",
}

type createDeploymentRequest struct {
	Name            string                  `json:"name"`
	Project         string                  `json:"project"`
	Files           []deploymentFileRequest `json:"files"`
	ProjectSettings *projectSettingsRequest `json:"projectSettings"`
	Target          string                  `json:"target"`
	Meta            map[string]string       `json:"meta"`
}

// deploymentFileRequest is either an uploaded file (sha, size) or an
// inlined one (data, encoding).
type deploymentFileRequest struct {
	File     string  `json:"file"`
	SHA      string  `json:"sha"`
	Size     *int64  `json:"size"`
	Data     *string `json:"data"`
	Encoding string  `json:"encoding"`
}

type projectSettingsRequest struct {
	Framework *string `json:"framework"`
}

// Vercel's limits on a deployment's meta.
const (
	maxMetaKeys     = 100
	maxMetaValueLen = 65536
)

// createDeployment creates a deployment whose build then runs on the clock.
//
// Its project is the one named by `project` (id or name), which must exist
// (404 otherwise); without `project`, the project called `name`, created
// on the spot if there is none, as Vercel does for CLI deployments. A
// project's first deployment needs projectSettings unless the project
// already has a framework or ?skipAutoDetectionConfirmation=1 is given.
// Every call creates a new deployment: forceNew is accepted and changes
// nothing, so a client that retries blindly makes duplicates here as it
// would on Vercel.
//
// Checks run in this order: body (400), project (404), project settings
// (400 missing_project_settings), files (400 missing_files), daily cap
// (402). Only a deployment that is certain to be created uses up the cap.
func (s *Server) createDeployment(c *call) reply {
	var req createDeploymentRequest
	if rep := decodeBody(c.r, createDeploymentMembers, &req); rep != nil {
		return *rep
	}
	if req.Name == "" {
		return badRequest("Invalid request: missing required property `name`.")
	}
	if len(req.Files) == 0 {
		return badRequest("Invalid request: `files` should NOT have fewer than 1 items.")
	}
	if len(req.Meta) > maxMetaKeys {
		return badRequest("Invalid request: `meta` should NOT have more than %d properties.", maxMetaKeys)
	}
	for k, v := range req.Meta {
		if len(v) > maxMetaValueLen {
			return badRequest("Invalid request: `meta.%s` should NOT be longer than %d characters.", k, maxMetaValueLen)
		}
	}
	framework := ""
	if ps := req.ProjectSettings; ps != nil && ps.Framework != nil {
		framework = *ps.Framework
		if framework != "" && !slices.Contains(frameworks, framework) {
			return badRequest("Invalid request: `projectSettings.framework` should be equal to one of the allowed values.")
		}
	}
	// Inlined files are decoded before taking the lock.
	inline := make(map[int][]byte)
	for i, f := range req.Files {
		switch {
		case f.File == "":
			return badRequest("Invalid request: `files[%d]` missing required property `file`.", i)
		case f.Data != nil:
			data := []byte(*f.Data)
			if f.Encoding == "base64" {
				var err error
				if data, err = base64.StdEncoding.DecodeString(*f.Data); err != nil {
					return badRequest("Invalid request: `files[%d].data` is not valid base64.", i)
				}
			}
			inline[i] = data
		case !isSHA1Hex(strings.ToLower(f.SHA)):
			return badRequest("Invalid request: `files[%d].sha` should be a SHA-1 in hex.", i)
		}
	}
	skipSettings := c.r.URL.Query().Get("skipAutoDetectionConfirmation") == "1"

	s.mu.Lock()
	defer s.mu.Unlock()
	var p *project
	if req.Project != "" {
		if p = s.st.lookupProject(s.account(c), req.Project); p == nil {
			return notFound("Project not found")
		}
	} else {
		p = s.st.projectsByName[nameKey(s.account(c), req.Name)]
		if p == nil && !validProjectName(req.Name) {
			return badRequest("%s", projectNameRule)
		}
	}
	if req.ProjectSettings == nil && !skipSettings && (p == nil || (!p.deployed && p.framework == "")) {
		return errorReply(http.StatusBadRequest, apiError{
			Code:    "missing_project_settings",
			Message: "The `projectSettings` object is required for new projects. Send it, or ?skipAutoDetectionConfirmation=1 to accept the detected settings.",
		})
	}

	failed, failMsg := false, ""
	var missing []string
	for i, f := range req.Files {
		if data, ok := inline[i]; ok {
			if isMarkerPath(f.File) && !failed {
				failed, failMsg = true, failMessage(data)
			} else if msg, found := scanFailMarker(data); found && !failed {
				failed, failMsg = true, msg
			}
			continue
		}
		sha := strings.ToLower(f.SHA)
		up := s.st.files[sha]
		if up == nil {
			if !slices.Contains(missing, sha) {
				missing = append(missing, sha)
			}
			continue
		}
		switch {
		case failed:
		case up.hasMarker:
			failed, failMsg = true, up.marker
		case isMarkerPath(f.File):
			failed, failMsg = true, failMessage(up.small)
		}
	}
	if len(missing) > 0 {
		return errorReply(http.StatusBadRequest, apiError{Code: "missing_files", Message: "Missing files", Missing: missing})
	}

	now := s.now()
	if s.cfg.Quirks.BuildsFull && s.st.slots.full(now) {
		return errorReply(http.StatusTooManyRequests, apiError{Code: "builds_rate_limited",
			Message: "You have reached the maximum number of concurrent builds. Wait for a build to finish, or upgrade your plan."})
	}
	if rep := s.limits.takeDeployment(c.team, now); rep != nil {
		return *rep
	}
	if p == nil {
		p = s.newProjectLocked(req.Name, framework, c.team, now)
	}
	if p.framework == "" && framework != "" {
		p.framework, p.updatedAt = framework, now
	}
	if framework == "" {
		framework = p.framework
	}

	dur := s.cfg.BuildTime
	if s.cfg.BuildJitter > 0 {
		dur += time.Duration(s.rng.Int64N(int64(s.cfg.BuildJitter)))
	}
	d := &deployment{
		seq: s.st.next(), id: s.newIDLocked("dpl_", 28), name: req.Name,
		projectID: p.id, projectName: p.name, ownerID: p.accountID, team: c.team,
		framework: framework, meta: maps.Clone(req.Meta), createdAt: now,
		failed: failed, errorMessage: failMsg,
	}
	for s.st.deploymentsByID[d.id] != nil {
		d.id = s.newIDLocked("dpl_", 28)
	}
	if d.meta == nil {
		d.meta = map[string]string{}
	}
	if req.Target == "production" || req.Target == "staging" {
		d.target = req.Target
	}
	for _, e := range p.env {
		d.env = append(d.env, e.key)
	}
	d.url = deploymentHost(req.Name, s.randLocked(lowerAlphaNum, 9))
	d.schedule(s.st.slots.start(now, dur), dur)
	d.aliasAt = d.doneAt.Add(s.cfg.Quirks.AliasDelay)
	d.blocked = s.cfg.Quirks.BlockDeployments

	s.st.deployments = append(s.st.deployments, d)
	s.st.deploymentsByID[d.id] = d
	s.st.deploymentsByURL[d.url] = d
	p.deployments = append(p.deployments, d)
	p.deployed = true
	s.stats.deploymentsCreated[p.name]++
	return jsonReply(http.StatusOK, s.deploymentBodyLocked(d, now))
}

// deploymentHost makes a deployment's hostname the way Vercel does:
// <name>-<hash>-<scope>.vercel.app, with the name shortened so that the
// label fits DNS's 63 characters.
func deploymentHost(name, hash string) string {
	label := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		default:
			return '-'
		}
	}, name)
	if room := 63 - len(hash) - len(scopeSlug) - 2; len(label) > room {
		label = label[:room]
	}
	label = strings.Trim(label, "-")
	if label == "" {
		label = "deployment"
	}
	return fmt.Sprintf("%s-%s-%s.vercel.app", label, hash, scopeSlug)
}

// aliasesAt is the deployment's aliases at t: none until READY; then the
// production domain and the project's own domains for production, the
// team domain for staging, and none for a preview built without git.
func (d *deployment) aliasesAt(t time.Time, domains []string) []string {
	if !d.aliasedAt(t) {
		return []string{}
	}
	switch d.target {
	case "production":
		return append([]string{d.projectName + ".vercel.app"}, domains...)
	case "staging":
		return []string{d.projectName + "-" + scopeSlug + ".vercel.app"}
	}
	return []string{}
}

// aliasedAt reports whether the deployment's domains point at it at t:
// from Quirks.AliasDelay after READY.
func (d *deployment) aliasedAt(t time.Time) bool {
	return d.stateAt(t) == stateReady && !t.Before(d.aliasAt)
}

func (d *deployment) metaView() map[string]string {
	if m := maps.Clone(d.meta); m != nil {
		return m
	}
	return map[string]string{}
}

func (d *deployment) inspectorURL() string {
	return fmt.Sprintf("https://vercel.com/%s/%s/%s", scopeSlug, d.projectName, strings.TrimPrefix(d.id, "dpl_"))
}

func (s *Server) getDeployment(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.lookupDeployment(c.r.PathValue("idOrUrl"))
	if d == nil {
		return notFound("Deployment not found")
	}
	return jsonReply(http.StatusOK, s.deploymentBodyLocked(d, s.now()))
}

// lookupDeployment finds a live deployment by id or hostname, as Vercel's
// {idOrUrl} parameters do.
func (st *state) lookupDeployment(key string) *deployment {
	if d := st.deploymentsByID[key]; d != nil {
		return d
	}
	return st.deploymentsByURL[strings.TrimSuffix(key, "/")]
}

// listDeployments lists live deployments, newest first, filtered by
// projectId (id or name), app (deployment name), target, state (a comma
// list), since and until (epoch ms, exclusive). limit defaults to 20 and is
// at most 100; pagination.next is the `until` of the next page.
func (s *Server) listDeployments(c *call) reply {
	q := c.r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 1 || n != float64(int(n)) {
			return badRequest("Invalid query: `limit` should be a positive integer.")
		}
		limit = min(int(n), 100)
	}
	var since, until int64
	for name, dst := range map[string]*int64{"since": &since, "until": &until} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return badRequest("Invalid query: `%s` should be a timestamp in milliseconds.", name)
			}
			*dst = n
		}
	}
	var states []string
	if v := q.Get("state"); v != "" {
		states = strings.Split(v, ",")
	}
	// A preview deployment has no target (null); "preview" finds those.
	target := q.Get("target")
	if target == "preview" {
		target = ""
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	projectID := ""
	if v := q.Get("projectId"); v != "" {
		p := s.st.lookupProject(s.account(c), v)
		if p == nil {
			return notFound("Project not found")
		}
		projectID = p.id
	}
	body := listDeploymentsBody{Deployments: []deploymentListItem{}}
	more := false
	for i := len(s.st.deployments) - 1; i >= 0; i-- {
		d := s.st.deployments[i]
		created := d.createdAt.UnixMilli()
		state := d.stateAt(now)
		switch {
		case !d.deletedAt.IsZero(),
			projectID != "" && d.projectID != projectID,
			q.Has("app") && d.name != q.Get("app"),
			q.Has("target") && d.target != target,
			states != nil && !slices.Contains(states, state),
			since != 0 && created <= since,
			until != 0 && created >= until:
			continue
		}
		if len(body.Deployments) == limit {
			more = true
			break
		}
		body.Deployments = append(body.Deployments, s.deploymentListItemLocked(d, now))
	}
	body.Pagination.Count = len(body.Deployments)
	if n := len(body.Deployments); n > 0 {
		prev := body.Deployments[0].Created
		body.Pagination.Prev = &prev
		if more {
			next := body.Deployments[n-1].Created
			body.Pagination.Next = &next
		}
	}
	return jsonReply(http.StatusOK, body)
}

// deploymentBody is Vercel's full deployment object (the owner's view):
// every member the schema requires and those a client reads.
type deploymentBody struct {
	AliasAssignedAt           *int64              `json:"aliasAssignedAt"`
	Build                     deploymentBuildBody `json:"build"`
	Env                       []string            `json:"env"`
	InspectorURL              *string             `json:"inspectorUrl"`
	IsInConcurrentBuildsQueue bool                `json:"isInConcurrentBuildsQueue"`
	IsInSystemBuildsQueue     bool                `json:"isInSystemBuildsQueue"`
	ProjectSettings           projectSettingsBody `json:"projectSettings"`
	Alias                     []string            `json:"alias"`
	AliasAssigned             bool                `json:"aliasAssigned"`
	BootedAt                  int64               `json:"bootedAt"`
	BuildingAt                int64               `json:"buildingAt"`
	BuildSkipped              bool                `json:"buildSkipped"`
	Creator                   creatorBody         `json:"creator"`
	Public                    bool                `json:"public"`
	Ready                     int64               `json:"ready,omitempty"`
	Status                    string              `json:"status"`
	Team                      *teamBody           `json:"team,omitempty"`
	ID                        string              `json:"id"`
	CreatedAt                 int64               `json:"createdAt"`
	ReadyState                string              `json:"readyState"`
	Name                      string              `json:"name"`
	Type                      string              `json:"type"`
	BuildErrorAt              int64               `json:"buildErrorAt,omitempty"`
	ErrorCode                 string              `json:"errorCode,omitempty"`
	ErrorMessage              string              `json:"errorMessage,omitempty"`
	ErrorStep                 string              `json:"errorStep,omitempty"`
	Meta                      map[string]string   `json:"meta"`
	NodeVersion               string              `json:"nodeVersion"`
	Project                   deploymentProject   `json:"project"`
	Regions                   []string            `json:"regions"`
	Target                    *string             `json:"target"`
	URL                       string              `json:"url"`
	Version                   int                 `json:"version"`
	ProjectID                 string              `json:"projectId"`
	Plan                      string              `json:"plan"`
	CreatedIn                 string              `json:"createdIn"`
	OwnerID                   string              `json:"ownerId"`
	Routes                    []any               `json:"routes"`
}

type deploymentBuildBody struct {
	Env []string `json:"env"`
}

type projectSettingsBody struct {
	BuildCommand                *string `json:"buildCommand"`
	CommandForIgnoringBuildStep *string `json:"commandForIgnoringBuildStep"`
	DevCommand                  *string `json:"devCommand"`
	Framework                   *string `json:"framework"`
	InstallCommand              *string `json:"installCommand"`
	OutputDirectory             *string `json:"outputDirectory"`
}

type teamBody struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
}

type deploymentProject struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Framework *string `json:"framework"`
}

func (s *Server) deploymentBodyLocked(d *deployment, now time.Time) deploymentBody {
	state := d.stateAt(now)
	inspector := d.inspectorURL()
	b := deploymentBody{
		Build:                     deploymentBuildBody{Env: []string{}},
		Env:                       slices.Clone(d.env),
		InspectorURL:              &inspector,
		IsInConcurrentBuildsQueue: now.Before(d.startAt),
		ProjectSettings:           projectSettingsBody{Framework: nullable(d.framework)},
		Alias:                     d.aliasesAt(now, s.projectDomainsLocked(d.projectID)),
		AliasAssigned:             d.aliasedAt(now),
		BootedAt:                  reached(d.initAt, d.createdAt, now),
		BuildingAt:                reached(d.buildAt, d.createdAt, now),
		Creator:                   creatorBody{UID: s.userID, Username: username},
		Status:                    state,
		ID:                        d.id,
		CreatedAt:                 d.createdAt.UnixMilli(),
		ReadyState:                state,
		Name:                      d.name,
		Type:                      "LAMBDAS",
		Meta:                      d.metaView(),
		NodeVersion:               nodeVersion,
		Project:                   deploymentProject{ID: d.projectID, Name: d.projectName, Framework: nullable(d.framework)},
		Regions:                   []string{region},
		Target:                    nullable(d.target),
		URL:                       d.url,
		Version:                   2,
		ProjectID:                 d.projectID,
		Plan:                      plan,
		CreatedIn:                 region,
		OwnerID:                   d.ownerID,
	}
	if b.Env == nil {
		b.Env = []string{}
	}
	if d.team != "" {
		b.Team = &teamBody{ID: d.team, Name: scopeSlug, Slug: scopeSlug}
	}
	switch state {
	case stateReady:
		b.Ready = d.doneAt.UnixMilli()
		if d.aliasedAt(now) {
			at := d.aliasAt.UnixMilli()
			b.AliasAssignedAt = &at
		}
	case stateError:
		b.BuildErrorAt = d.doneAt.UnixMilli()
		b.ErrorCode, b.ErrorMessage, b.ErrorStep = BuildFailedCode, d.errorMessage, "build"
	}
	return b
}

// reached is at in epoch ms if it has come by now, else fallback's.
func reached(at, fallback, now time.Time) int64 {
	if now.Before(at) {
		return fallback.UnixMilli()
	}
	return at.UnixMilli()
}

type listDeploymentsBody struct {
	Deployments []deploymentListItem `json:"deployments"`
	Pagination  paginationBody       `json:"pagination"`
}

type paginationBody struct {
	Count int    `json:"count"`
	Next  *int64 `json:"next"`
	Prev  *int64 `json:"prev"`
}

// deploymentListItem is a deployment as GET /v6/deployments shows it: "uid"
// rather than "id", "created" as well as "createdAt", "state" as well as
// "readyState".
type deploymentListItem struct {
	UID           string            `json:"uid"`
	Name          string            `json:"name"`
	ProjectID     string            `json:"projectId"`
	URL           string            `json:"url"`
	Created       int64             `json:"created"`
	CreatedAt     int64             `json:"createdAt"`
	BuildingAt    int64             `json:"buildingAt"`
	Ready         int64             `json:"ready,omitempty"`
	State         string            `json:"state"`
	ReadyState    string            `json:"readyState"`
	Type          string            `json:"type"`
	Creator       creatorBody       `json:"creator"`
	Meta          map[string]string `json:"meta"`
	Target        *string           `json:"target"`
	AliasAssigned bool              `json:"aliasAssigned"`
	InspectorURL  *string           `json:"inspectorUrl"`
	ErrorCode     string            `json:"errorCode,omitempty"`
	ErrorMessage  string            `json:"errorMessage,omitempty"`
}

func (s *Server) deploymentListItemLocked(d *deployment, now time.Time) deploymentListItem {
	state := d.stateAt(now)
	inspector := d.inspectorURL()
	it := deploymentListItem{
		UID: d.id, Name: d.name, ProjectID: d.projectID, URL: d.url,
		Created: d.createdAt.UnixMilli(), CreatedAt: d.createdAt.UnixMilli(),
		BuildingAt: reached(d.buildAt, d.createdAt, now),
		State:      state, ReadyState: state, Type: "LAMBDAS",
		Creator: creatorBody{UID: s.userID, Username: username, Email: email},
		Meta:    d.metaView(), Target: nullable(d.target), AliasAssigned: d.aliasedAt(now),
		InspectorURL: &inspector,
	}
	switch state {
	case stateReady:
		it.Ready = d.doneAt.UnixMilli()
	case stateError:
		it.ErrorCode, it.ErrorMessage = BuildFailedCode, d.errorMessage
	}
	return it
}
