package vercelsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// createProjectMembers are the members POST /v11/projects accepts; its
// schema says additionalProperties: false, so Vercel refuses any other.
var createProjectMembers = []string{
	"buildCommand", "commandForIgnoringBuildStep", "devCommand",
	"enableAffectedProjectsDeployments", "enablePreviewFeedback", "enableProductionFeedback",
	"environmentVariables", "framework", "gitRepository", "installCommand", "name",
	"oidcTokenConfig", "outputDirectory", "previewDeploymentsDisabled", "publicSource",
	"resourceConfig", "rootDirectory", "serverlessFunctionRegion",
	"serverlessFunctionZeroConfigFailover", "skipGitConnectDuringLink", "ssoProtection",
}

type createProjectRequest struct {
	Name                 string          `json:"name"`
	Framework            *string         `json:"framework"`
	EnvironmentVariables []envVarRequest `json:"environmentVariables"`
}

type envVarRequest struct {
	Key    string          `json:"key"`
	Value  *string         `json:"value"`
	Type   string          `json:"type"`
	Target json.RawMessage `json:"target"`
}

var projectNameRE = regexp.MustCompile(`^[a-z0-9._-]{1,100}$`)

// validProjectName applies Vercel's rule: up to 100 characters, lowercase
// letters, digits, '.', '_' and '-', and never '---'.
func validProjectName(name string) bool {
	return projectNameRE.MatchString(name) && !strings.Contains(name, "---")
}

const projectNameRule = "Project names can be up to 100 characters long and must be lowercase. " +
	"They can include letters, digits, and the following characters: '.', '_', '-'. " +
	"However, they cannot contain the sequence '---'."

var envTargets = []string{"production", "preview", "development"}

var envTypes = []string{"system", "secret", "encrypted", "plain", "sensitive"}

// envTarget reads an environment variable's target, which Vercel accepts as
// one name or a list of names.
func envTarget(raw json.RawMessage) ([]string, bool) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, slices.Contains(envTargets, one)
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil || len(many) == 0 {
		return nil, false
	}
	for _, t := range many {
		if !slices.Contains(envTargets, t) {
			return nil, false
		}
	}
	return many, true
}

func (s *Server) createProject(c *call) reply {
	var req createProjectRequest
	if rep := decodeBody(c.r, createProjectMembers, &req); rep != nil {
		return *rep
	}
	if req.Name == "" {
		return badRequest("Invalid request: missing required property `name`.")
	}
	if !validProjectName(req.Name) {
		return badRequest("%s", projectNameRule)
	}
	framework := ""
	if req.Framework != nil {
		framework = *req.Framework
		if framework != "" && !slices.Contains(frameworks, framework) {
			return badRequest("Invalid request: `framework` should be equal to one of the allowed values.")
		}
	}
	type pendingEnv struct {
		key, value, typ string
		target          []string
	}
	envs := make([]pendingEnv, 0, len(req.EnvironmentVariables))
	for i, e := range req.EnvironmentVariables {
		if e.Key == "" || e.Value == nil || len(e.Target) == 0 {
			return badRequest("Invalid request: `environmentVariables[%d]` missing required property `key`, `value` or `target`.", i)
		}
		target, ok := envTarget(e.Target)
		if !ok {
			return badRequest("Invalid request: `environmentVariables[%d].target` should be production, preview or development.", i)
		}
		typ := e.Type
		if typ == "" {
			typ = "encrypted"
		}
		if !slices.Contains(envTypes, typ) {
			return badRequest("Invalid request: `environmentVariables[%d].type` should be equal to one of the allowed values.", i)
		}
		envs = append(envs, pendingEnv{e.Key, *e.Value, typ, target})
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.st.projectsByName[nameKey(s.account(c), req.Name)] != nil {
		return conflict(fmt.Sprintf("Project %q already exists, please use a new name.", req.Name))
	}
	if rep, full := s.projectCapLocked(c); full {
		return rep
	}
	p := s.newProjectLocked(req.Name, framework, c.team, now)
	for _, e := range envs {
		p.env = append(p.env, envVar{
			id: s.randLocked(alphaNum, 16), key: e.key, value: e.value, typ: e.typ,
			target: e.target, createdAt: now,
		})
	}
	return jsonReply(http.StatusOK, s.projectBodyLocked(p, now))
}

// newProjectLocked creates and indexes a project; creating a deployment
// under a new name uses it too.
func (s *Server) newProjectLocked(name, framework, team string, now time.Time) *project {
	id := s.newIDLocked("prj_", 28)
	for s.st.projects[id] != nil {
		id = s.newIDLocked("prj_", 28)
	}
	account := team
	if account == "" {
		account = s.userID
	}
	p := &project{
		seq: s.st.next(), id: id, name: name, accountID: account, framework: framework,
		createdAt: now, updatedAt: now,
	}
	s.st.projects[id] = p
	s.st.projectsByName[nameKey(account, name)] = p
	s.stats.projectsCreated[name]++
	return p
}

func (s *Server) getProject(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.lookupProject(s.account(c), c.r.PathValue("idOrName"))
	if p == nil {
		return notFound("Project not found")
	}
	return jsonReply(http.StatusOK, s.projectBodyLocked(p, s.now()))
}

// deleteProject removes a project with everything hanging off it: its
// deployments, its store connections (and the variables they injected) and
// its pending transfer codes.
func (s *Server) deleteProject(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.lookupProject(s.account(c), c.r.PathValue("idOrName"))
	if p == nil {
		return notFound("Project not found")
	}
	now := s.now()
	for _, d := range p.deployments {
		d.deletedAt = now
		delete(s.st.deploymentsByID, d.id)
		delete(s.st.deploymentsByURL, d.url)
	}
	for k := range s.st.connections {
		if k.projectID == p.id {
			s.removeConnectionLocked(k)
		}
	}
	for code, t := range s.st.transfers {
		if t.projectID == p.id {
			delete(s.st.transfers, code)
		}
	}
	delete(s.st.projects, p.id)
	delete(s.st.projectsByName, nameKey(p.accountID, p.name))
	for _, dom := range p.domains {
		delete(s.st.domains, dom)
	}
	return noContent(http.StatusNoContent)
}

// projectBody is Vercel's project object: every member its schema
// requires, and the ones a client plausibly reads.
type projectBody struct {
	AccountID string `json:"accountId"`
	// Alias lists the project's domains: its production domain once a
	// production deployment is live. @vercel/sdk requires the member.
	Alias []projectAliasBody `json:"alias"`
	// DeploymentExpiration is the project's retention of deployments,
	// which @vercel/sdk requires too.
	DeploymentExpiration                 deploymentExpirationBody `json:"deploymentExpiration"`
	AutoExposeSystemEnvs                 bool                     `json:"autoExposeSystemEnvs"`
	AutoAssignCustomDomains              bool                     `json:"autoAssignCustomDomains"`
	BuildCommand                         *string                  `json:"buildCommand"`
	CommandForIgnoringBuildStep          *string                  `json:"commandForIgnoringBuildStep"`
	CreatedAt                            int64                    `json:"createdAt"`
	DevCommand                           *string                  `json:"devCommand"`
	DirectoryListing                     bool                     `json:"directoryListing"`
	InstallCommand                       *string                  `json:"installCommand"`
	Env                                  []projectEnvBody         `json:"env"`
	Framework                            *string                  `json:"framework"`
	GitForkProtection                    bool                     `json:"gitForkProtection"`
	ID                                   string                   `json:"id"`
	LatestDeployments                    []latestDeploymentBody   `json:"latestDeployments"`
	Live                                 bool                     `json:"live"`
	Name                                 string                   `json:"name"`
	NodeVersion                          string                   `json:"nodeVersion"`
	OutputDirectory                      *string                  `json:"outputDirectory"`
	PublicSource                         *bool                    `json:"publicSource"`
	ResourceConfig                       resourceConfigBody       `json:"resourceConfig"`
	DefaultResourceConfig                resourceConfigBody       `json:"defaultResourceConfig"`
	RootDirectory                        *string                  `json:"rootDirectory"`
	ServerlessFunctionZeroConfigFailover bool                     `json:"serverlessFunctionZeroConfigFailover"`
	SourceFilesOutsideRootDirectory      bool                     `json:"sourceFilesOutsideRootDirectory"`
	SSOProtection                        *ssoProtectionBody       `json:"ssoProtection"`
	UpdatedAt                            int64                    `json:"updatedAt"`
}

type projectAliasBody struct {
	Domain      string  `json:"domain"`
	Environment string  `json:"environment"`
	Target      string  `json:"target"`
	Deployment  *string `json:"deployment"`
	CreatedAt   int64   `json:"createdAt"`
}

type deploymentExpirationBody struct {
	ExpirationDays           int `json:"expirationDays"`
	ExpirationDaysProduction int `json:"expirationDaysProduction"`
	ExpirationDaysCanceled   int `json:"expirationDaysCanceled"`
	ExpirationDaysErrored    int `json:"expirationDaysErrored"`
	DeploymentsToKeep        int `json:"deploymentsToKeep"`
}

// Vercel's default retention of a new project's deployments.
var defaultExpiration = deploymentExpirationBody{
	ExpirationDays: 180, ExpirationDaysProduction: 365, ExpirationDaysCanceled: 30, ExpirationDaysErrored: 90, DeploymentsToKeep: 10,
}

type projectEnvBody struct {
	Type            string   `json:"type"`
	Value           string   `json:"value"`
	Key             string   `json:"key"`
	Target          []string `json:"target"`
	ID              string   `json:"id"`
	ConfigurationID string   `json:"configurationId,omitempty"`
	CreatedAt       int64    `json:"createdAt"`
	UpdatedAt       int64    `json:"updatedAt"`
}

type resourceConfigBody struct {
	FunctionDefaultRegions []string `json:"functionDefaultRegions"`
}

type ssoProtectionBody struct {
	DeploymentType string `json:"deploymentType"`
}

type latestDeploymentBody struct {
	ID                 string            `json:"id"`
	Alias              []string          `json:"alias"`
	AliasAssigned      bool              `json:"aliasAssigned"`
	BuildingAt         int64             `json:"buildingAt"`
	CreatedAt          int64             `json:"createdAt"`
	CreatedIn          string            `json:"createdIn"`
	Creator            creatorBody       `json:"creator"`
	DeploymentHostname string            `json:"deploymentHostname"`
	Name               string            `json:"name"`
	Meta               map[string]string `json:"meta"`
	Plan               string            `json:"plan"`
	Private            bool              `json:"private"`
	ReadyAt            int64             `json:"readyAt,omitempty"`
	ReadyState         string            `json:"readyState"`
	Target             *string           `json:"target"`
	TeamID             *string           `json:"teamId"`
	Type               string            `json:"type"`
	URL                string            `json:"url"`
	UserID             string            `json:"userId"`
}

type creatorBody struct {
	UID      string `json:"uid"`
	Username string `json:"username"`
	Email    string `json:"email,omitempty"`
}

// The simulated account's fixed facts.
const (
	region      = "iad1"
	nodeVersion = "22.x"
	plan        = "hobby"
	username    = "vercelsim"
	email       = "vercelsim@example.com"
	scopeSlug   = "vercelsim"
)

func (s *Server) projectBodyLocked(p *project, now time.Time) projectBody {
	b := projectBody{
		AccountID:                       p.accountID,
		AutoExposeSystemEnvs:            true,
		AutoAssignCustomDomains:         true,
		Alias:                           []projectAliasBody{},
		DeploymentExpiration:            defaultExpiration,
		CreatedAt:                       p.createdAt.UnixMilli(),
		Env:                             make([]projectEnvBody, 0, len(p.env)),
		Framework:                       nullable(p.framework),
		GitForkProtection:               true,
		ID:                              p.id,
		LatestDeployments:               []latestDeploymentBody{},
		Name:                            p.name,
		NodeVersion:                     nodeVersion,
		ResourceConfig:                  resourceConfigBody{FunctionDefaultRegions: []string{region}},
		DefaultResourceConfig:           resourceConfigBody{FunctionDefaultRegions: []string{region}},
		SourceFilesOutsideRootDirectory: true,
		SSOProtection:                   &ssoProtectionBody{DeploymentType: "all_except_custom_domains"},
		UpdatedAt:                       p.updatedAt.UnixMilli(),
	}
	for _, e := range p.env {
		b.Env = append(b.Env, projectEnvBody{
			Type: e.typ, Value: envValueView(e), Key: e.key, Target: e.target, ID: e.id,
			ConfigurationID: e.configurationID, CreatedAt: e.createdAt.UnixMilli(), UpdatedAt: e.createdAt.UnixMilli(),
		})
	}
	if n := len(p.deployments); n > 0 {
		d := p.deployments[n-1]
		state := d.stateAt(now)
		b.Live = state == stateReady
		for _, a := range d.aliasesAt(now, p.domains) {
			if d.target == "production" {
				id := d.id
				b.Alias = append(b.Alias, projectAliasBody{Domain: a, Environment: "production", Target: "PRODUCTION",
					Deployment: &id, CreatedAt: d.aliasAt.UnixMilli()})
			}
		}
		ld := latestDeploymentBody{
			ID: d.id, Alias: d.aliasesAt(now, p.domains), AliasAssigned: d.aliasedAt(now),
			BuildingAt: d.buildAt.UnixMilli(), CreatedAt: d.createdAt.UnixMilli(), CreatedIn: region,
			Creator:            creatorBody{UID: s.userID, Username: username, Email: email},
			DeploymentHostname: d.url, Name: d.name, Meta: d.metaView(), Plan: plan, Private: true,
			ReadyState: state, Target: nullable(d.target), TeamID: nullable(d.team), Type: "LAMBDAS",
			URL: d.url, UserID: s.userID,
		}
		if state == stateReady {
			ld.ReadyAt = d.doneAt.UnixMilli()
		}
		b.LatestDeployments = append(b.LatestDeployments, ld)
	}
	return b
}

// envValueView is what Vercel shows of a variable's value: plain ones in
// clear, the others only as an opaque token.
func envValueView(e envVar) string {
	if e.typ == "plain" || e.typ == "system" {
		return e.value
	}
	return "encrypted:" + e.id
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
