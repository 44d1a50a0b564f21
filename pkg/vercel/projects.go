package vercel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// defaultEnvTargets is where an EnvVar without a Target applies: the
// project's DATABASE_URL and friends are needed by every build.
func defaultEnvTargets() []string { return []string{"production", "preview", "development"} }

// CreateProject creates a project. A 409 means the name is taken; the
// caller resolves it with GetProject.
//
// Vercel API: POST /v11/projects (operation createProject,
// https://vercel.com/docs/rest-api/projects/create-a-new-project),
// or POST /v10/projects, as in Prisma's guide, with WithProjectsAPIVersion(10).
func (c *Client) CreateProject(ctx context.Context, req CreateProjectRequest) (*Project, *Response, error) {
	if req.Name == "" {
		return nil, nil, &InvalidArgumentError{Endpoint: EndpointCreateProject, Argument: "name", Reason: "must not be empty"}
	}
	if len(req.EnvironmentVariables) > 0 {
		// Copied: the caller's slice may be shared between goroutines.
		envs := make([]EnvVar, len(req.EnvironmentVariables))
		for i, e := range req.EnvironmentVariables {
			if e.Type == "" {
				e.Type = "encrypted"
			}
			if len(e.Target) == 0 {
				e.Target = defaultEnvTargets()
			}
			envs[i] = e
		}
		req.EnvironmentVariables = envs
	}
	r, err := jsonRequest(EndpointCreateProject, http.MethodPost, fmt.Sprintf("/v%d/projects", c.cfg.projectsVersion), req)
	if err != nil {
		return nil, nil, err
	}
	p := new(Project)
	resp, err := c.do(ctx, r, p)
	if err != nil {
		return nil, resp, err
	}
	if p.ID == "" {
		return nil, resp, &DecodeError{Endpoint: EndpointCreateProject, StatusCode: resp.StatusCode, Err: errors.New("project has no id")}
	}
	return p, resp, nil
}

// GetProject finds a project by id or name.
//
// Vercel API: GET /v9/projects/{idOrName} (operation getProject,
// https://vercel.com/docs/rest-api/projects/find-a-project-by-id-or-name).
func (c *Client) GetProject(ctx context.Context, idOrName string) (*Project, *Response, error) {
	seg, err := segment(EndpointGetProject, "idOrName", idOrName)
	if err != nil {
		return nil, nil, err
	}
	p := new(Project)
	resp, err := c.do(ctx, request{ep: EndpointGetProject, method: http.MethodGet, path: "/v9/projects/" + seg}, p)
	if err != nil {
		return nil, resp, err
	}
	if p.ID == "" {
		return nil, resp, &DecodeError{Endpoint: EndpointGetProject, StatusCode: resp.StatusCode, Err: errors.New("project has no id")}
	}
	return p, resp, nil
}

// DeleteProject deletes a project; Vercel answers 204.
//
// Vercel API: DELETE /v9/projects/{idOrName} (operation deleteProject,
// https://vercel.com/docs/rest-api/projects/delete-a-project).
func (c *Client) DeleteProject(ctx context.Context, idOrName string) (*Response, error) {
	seg, err := segment(EndpointDeleteProject, "idOrName", idOrName)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, request{ep: EndpointDeleteProject, method: http.MethodDelete, path: "/v9/projects/" + seg}, nil)
}

// CreateTransferRequest asks for a code with which another account can
// claim the project (see ClaimURL). The code lives 24 hours; asking again
// is harmless.
//
// Vercel API: POST /projects/{idOrName}/transfer-request (operation
// createProjectTransferRequest,
// https://vercel.com/docs/rest-api/projects/create-project-transfer-request).
// Prisma's guide uses the same route under /v9.
func (c *Client) CreateTransferRequest(ctx context.Context, projectIDOrName string, req TransferRequest) (*TransferCode, *Response, error) {
	seg, err := segment(EndpointTransferRequest, "projectIDOrName", projectIDOrName)
	if err != nil {
		return nil, nil, err
	}
	r, err := jsonRequest(EndpointTransferRequest, http.MethodPost, "/projects/"+seg+"/transfer-request", req)
	if err != nil {
		return nil, nil, err
	}
	tc := new(TransferCode)
	resp, err := c.do(ctx, r, tc)
	if err != nil {
		return nil, resp, err
	}
	if tc.Code == "" {
		return nil, resp, &DecodeError{Endpoint: EndpointTransferRequest, StatusCode: resp.StatusCode, Err: errors.New("answer has no code")}
	}
	return tc, resp, nil
}

// ClaimURLBase is the page where a transfer code is redeemed.
const ClaimURLBase = "https://vercel.com/claim-deployment"

// ClaimURL is the link handed to the end user to claim a project:
// https://vercel.com/claim-deployment?code=<code>&returnUrl=<returnURL>.
// returnURL is left out when empty.
func ClaimURL(code, returnURL string) string { return ClaimURLAt(ClaimURLBase, code, returnURL) }

// ClaimURLAt is ClaimURL on another claim page (the simulator's).
func ClaimURLAt(page, code, returnURL string) string {
	q := url.Values{"code": {code}}
	if returnURL != "" {
		q.Set("returnUrl", returnURL)
	}
	return page + "?" + q.Encode()
}

// ValidateProjectName checks Vercel's rules for project names (at most 100
// characters: lowercase letters, digits, '.', '_' and '-', without "---"),
// so that a name derived from a request can be refused before it spends
// budget. CreateProject does not call it: the API stays the authority.
func ValidateProjectName(name string) error {
	fail := func(reason string) error {
		return &InvalidArgumentError{Endpoint: EndpointCreateProject, Argument: "name", Reason: reason}
	}
	switch {
	case name == "":
		return fail("must not be empty")
	case len(name) > 100:
		return fail("longer than 100 characters")
	case strings.Contains(name, "---"):
		return fail(`must not contain "---"`)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fail(fmt.Sprintf("character %q not allowed: only lowercase letters, digits, '.', '_' and '-'", r))
		}
	}
	return nil
}

// ProjectDomain is a domain on a project.
type ProjectDomain struct {
	Name      string `json:"name"`
	ApexName  string `json:"apexName"`
	ProjectID string `json:"projectId"`
	Verified  bool   `json:"verified"`
}

// DomainTakenError is a domain that another project holds: adding it to
// this one cannot succeed until that project lets it go.
type DomainTakenError struct {
	APIError
	Domain string
}

// Unwrap gives errors.As access to the embedded *APIError.
func (e *DomainTakenError) Unwrap() error { return &e.APIError }

// AddProjectDomain puts domain on the project, so that production
// deployments are served on it. A domain the project has already counts
// as added: Vercel answers 409 both when this project and when another
// holds it, so a 409 is settled by asking whose it is; another project's
// gives a *DomainTakenError.
//
// Vercel API: POST /v10/projects/{idOrName}/domains (operation
// addProjectDomain, https://vercel.com/docs/rest-api/projects/add-a-domain-to-a-project)
// and GET /v9/projects/{idOrName}/domains/{domain} (getProjectDomain).
func (c *Client) AddProjectDomain(ctx context.Context, projectIDOrName, domain string) (*ProjectDomain, *Response, error) {
	seg, err := segment(EndpointAddDomain, "projectIDOrName", projectIDOrName)
	if err != nil {
		return nil, nil, err
	}
	dseg, err := segment(EndpointAddDomain, "domain", domain)
	if err != nil {
		return nil, nil, err
	}
	r, err := jsonRequest(EndpointAddDomain, http.MethodPost, "/v10/projects/"+seg+"/domains", map[string]string{"name": domain})
	if err != nil {
		return nil, nil, err
	}
	d := new(ProjectDomain)
	resp, err := c.do(ctx, r, d)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusConflict {
		d = new(ProjectDomain)
		resp, err = c.do(ctx, request{ep: EndpointGetDomain, method: http.MethodGet, path: "/v9/projects/" + seg + "/domains/" + dseg}, d)
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
			return nil, resp, &DomainTakenError{APIError: *apiErr, Domain: domain}
		}
	}
	if err != nil {
		return nil, resp, err
	}
	return d, resp, nil
}

// AcceptTransfer is the body of an accepted transfer request.
type AcceptTransfer struct {
	NewProjectName string `json:"newProjectName,omitempty"`
}

// TransferAccepted is Vercel's answer to an accepted transfer: the
// project moved; its databases moved unless listed in
// ResourceTransferErrors.
type TransferAccepted struct {
	PartnerCalls []struct {
		InstallationID string   `json:"installationId"`
		ResourceIDs    []string `json:"resourceIds"`
		Result         struct {
			Status string `json:"status"`
		} `json:"result"`
	} `json:"partnerCalls"`
	ResourceTransferErrors []json.RawMessage `json:"resourceTransferErrors"`
	TransferredStoreIDs    []string          `json:"transferredStoreIds"`
}

// AcceptTransferRequest redeems a transfer code into this client's team:
// what Vercel's claim page does for the user who opens a claim link.
// deployq never calls it (its token is the giving team's); tests and
// benchmarks play the user with it.
//
// Vercel API: PUT /projects/transfer-request/{code} (operation
// acceptProjectTransferRequest), answered 202.
func (c *Client) AcceptTransferRequest(ctx context.Context, code string, body AcceptTransfer) (*TransferAccepted, *Response, error) {
	seg, err := segment(EndpointAcceptTransfer, "code", code)
	if err != nil {
		return nil, nil, err
	}
	r, err := jsonRequest(EndpointAcceptTransfer, http.MethodPut, "/projects/transfer-request/"+seg, body)
	if err != nil {
		return nil, nil, err
	}
	out := new(TransferAccepted)
	resp, err := c.do(ctx, r, out)
	if err != nil {
		return nil, resp, err
	}
	return out, resp, nil
}
