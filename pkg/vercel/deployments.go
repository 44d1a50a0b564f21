package vercel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// maxMissingFilesRoundTrips bounds CreateDeploymentUploading. One round
// trip is the normal case (a source Vercel has not seen); a second covers a
// file that expired between upload and create. More means something else
// is wrong, and looping would only spend budget.
const maxMissingFilesRoundTrips = 2

// defaultListLimit is the page size of ListDeployments when none is given.
const defaultListLimit = 20

// FileSource gives the bytes of a file by SHA-1 for the missing_files
// round trip.
type FileSource interface {
	File(ctx context.Context, sha string) ([]byte, error)
}

// FileSourceFunc adapts a function to FileSource.
type FileSourceFunc func(ctx context.Context, sha string) ([]byte, error)

// File calls f.
func (f FileSourceFunc) File(ctx context.Context, sha string) ([]byte, error) { return f(ctx, sha) }

// CreateDeployment creates a deployment from files uploaded before. A file
// Vercel does not have yields a *MissingFilesError naming the SHA-1s to
// upload; CreateDeploymentUploading does that round trip.
//
// Vercel API: POST /v13/deployments (operation createDeployment,
// https://vercel.com/docs/rest-api/deployments/create-a-new-deployment).
func (c *Client) CreateDeployment(ctx context.Context, req CreateDeploymentRequest) (*Deployment, *Response, error) {
	if req.Name == "" {
		return nil, nil, &InvalidArgumentError{Endpoint: EndpointCreateDeployment, Argument: "Name", Reason: "must not be empty"}
	}
	if req.Files == nil {
		// Vercel wants a list, and the create step always sends one.
		req.Files = []DeploymentFile{}
	}
	r, err := jsonRequest(EndpointCreateDeployment, http.MethodPost, "/v13/deployments", req)
	if err != nil {
		return nil, nil, err
	}
	var w deploymentWire
	resp, err := c.do(ctx, r, &w)
	if err != nil {
		return nil, resp, err
	}
	return w.deployment(EndpointCreateDeployment, resp)
}

// CreateDeploymentUploading creates a deployment and, when Vercel answers
// missing_files, uploads each missing file from files and creates again,
// at most twice; then the *MissingFilesError is returned. Bytes from files
// are checked against their SHA-1 before they are sent. A nil files makes
// it behave as CreateDeployment.
//
// Vercel API: POST /v13/deployments (operation createDeployment) and
// POST /v2/files (operation uploadFile), as Vercel's own deploy client does.
func (c *Client) CreateDeploymentUploading(ctx context.Context, req CreateDeploymentRequest, files FileSource) (*Deployment, *Response, error) {
	for round := 0; ; round++ {
		d, resp, err := c.CreateDeployment(ctx, req)
		var mf *MissingFilesError
		if err == nil || files == nil || round == maxMissingFilesRoundTrips || !errors.As(err, &mf) || len(mf.Missing) == 0 {
			return d, resp, err
		}
		seen := make(map[string]bool, len(mf.Missing))
		for _, sha := range mf.Missing {
			if seen[sha] {
				continue
			}
			seen[sha] = true
			data, err := files.File(ctx, sha)
			if err != nil {
				return nil, resp, fmt.Errorf("vercel: %s: reading missing file %s: %w", EndpointCreateDeployment, sha, err)
			}
			if got := SHA1Hex(data); got != sha {
				return nil, resp, &InvalidArgumentError{Endpoint: EndpointUploadFile, Argument: "files",
					Reason: fmt.Sprintf("file source gave bytes with SHA-1 %s for %s", got, sha)}
			}
			if uresp, err := c.UploadFile(ctx, sha, data); err != nil {
				return nil, uresp, err
			}
		}
	}
}

// GetDeployment reads a deployment, by id or by its hostname; the pipeline
// polls it until Terminal.
//
// Vercel API: GET /v13/deployments/{idOrUrl} (operation getDeployment,
// https://vercel.com/docs/rest-api/deployments/get-a-deployment-by-id-or-url).
func (c *Client) GetDeployment(ctx context.Context, idOrURL string) (*Deployment, *Response, error) {
	seg, err := segment(EndpointGetDeployment, "idOrURL", idOrURL)
	if err != nil {
		return nil, nil, err
	}
	var w deploymentWire
	resp, err := c.do(ctx, request{ep: EndpointGetDeployment, method: http.MethodGet, path: "/v13/deployments/" + seg}, &w)
	if err != nil {
		return nil, resp, err
	}
	return w.deployment(EndpointGetDeployment, resp)
}

// ListDeployments lists the newest deployments, of one project when
// opts.ProjectID is set; their Meta finds the deployment that a lost
// CreateDeployment answer created. Only the first page is read.
//
// Vercel API: GET /v6/deployments (operation getDeployments,
// https://vercel.com/docs/rest-api/deployments/list-deployments). Its items
// carry "uid" instead of "id" and "state" beside "readyState".
func (c *Client) ListDeployments(ctx context.Context, opts ListDeploymentsOptions) ([]Deployment, *Response, error) {
	if opts.Limit < 0 {
		return nil, nil, &InvalidArgumentError{Endpoint: EndpointListDeployments, Argument: "Limit", Reason: "must not be negative"}
	}
	limit := opts.Limit
	if limit == 0 {
		limit = defaultListLimit
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if opts.ProjectID != "" {
		q.Set("projectId", opts.ProjectID)
	}
	var out struct {
		Deployments []deploymentWire `json:"deployments"`
	}
	resp, err := c.do(ctx, request{ep: EndpointListDeployments, method: http.MethodGet, path: "/v6/deployments", query: q}, &out)
	if err != nil {
		return nil, resp, err
	}
	list := make([]Deployment, 0, len(out.Deployments))
	for _, w := range out.Deployments {
		list = append(list, w.toDeployment())
	}
	return list, resp, nil
}

// deploymentWire reads both shapes of a deployment: the v13 object and the
// v6 list item. It is tolerant where the API's schemas disagree with each
// other: aliasAssigned is a boolean in v13 but a number, a boolean or null
// in v6, and meta values are strings except where they are not.
type deploymentWire struct {
	ID            string                     `json:"id"`
	UID           string                     `json:"uid"`
	URL           string                     `json:"url"`
	Name          string                     `json:"name"`
	ProjectID     string                     `json:"projectId"`
	ReadyState    string                     `json:"readyState"`
	State         string                     `json:"state"`
	Alias         []string                   `json:"alias"`
	AliasAssigned json.RawMessage            `json:"aliasAssigned"`
	AliasError    *AliasError                `json:"aliasError"`
	ErrorCode     string                     `json:"errorCode"`
	ErrorMessage  *string                    `json:"errorMessage"`
	Meta          map[string]json.RawMessage `json:"meta"`
	CreatedAt     float64                    `json:"createdAt"`
	Created       float64                    `json:"created"`
	BuildingAt    float64                    `json:"buildingAt"`
	Ready         float64                    `json:"ready"`
}

func (w *deploymentWire) toDeployment() Deployment {
	d := Deployment{
		ID:            w.ID,
		URL:           w.URL,
		Name:          w.Name,
		ProjectID:     w.ProjectID,
		ReadyState:    w.ReadyState,
		Alias:         w.Alias,
		AliasAssigned: truthy(w.AliasAssigned),
		AliasError:    w.AliasError,
		ErrorCode:     w.ErrorCode,
		CreatedAt:     int64(w.CreatedAt),
		BuildingAt:    int64(w.BuildingAt),
		Ready:         int64(w.Ready),
	}
	if d.ID == "" {
		d.ID = w.UID
	}
	if d.ReadyState == "" {
		d.ReadyState = w.State
	}
	if w.ErrorMessage != nil {
		d.ErrorMessage = *w.ErrorMessage
	}
	if d.CreatedAt == 0 {
		d.CreatedAt = int64(w.Created)
	}
	for k, raw := range w.Meta {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if d.Meta == nil {
				d.Meta = make(map[string]string, len(w.Meta))
			}
			d.Meta[k] = s
		}
	}
	return d
}

// deployment converts a single deployment answer, which is useless to the
// pipeline without an id to checkpoint and poll.
func (w *deploymentWire) deployment(ep Endpoint, resp *Response) (*Deployment, *Response, error) {
	d := w.toDeployment()
	if d.ID == "" {
		return nil, resp, &DecodeError{Endpoint: ep, StatusCode: resp.StatusCode, Err: errors.New("deployment has no id")}
	}
	return &d, resp, nil
}

// truthy reads a JSON boolean, or a number (a timestamp: set means true).
func truthy(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return false
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b
	}
	var n float64
	if json.Unmarshal(raw, &n) == nil {
		return n != 0
	}
	return false
}
