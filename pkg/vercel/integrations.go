package vercel

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// AuthorizeIntegration creates the billing authorization that CreateStore
// needs. The authorization may come back pending; its id is the caller's
// checkpoint, so that a retry reuses it instead of authorizing twice.
//
// Vercel API: POST /v1/integrations/billing/authorization. Undocumented:
// the route and body come from Prisma's instant-deployment guide. The
// answer is {"authorization":{…}}.
func (c *Client) AuthorizeIntegration(ctx context.Context, req AuthorizeRequest) (*Authorization, *Response, error) {
	if req.IntegrationIDOrSlug == "" {
		req.IntegrationIDOrSlug = "prisma"
	}
	r, err := jsonRequest(EndpointAuthorize, http.MethodPost, "/v1/integrations/billing/authorization", req)
	if err != nil {
		return nil, nil, err
	}
	var out struct {
		Authorization *Authorization `json:"authorization"`
	}
	resp, err := c.do(ctx, r, &out)
	if err != nil {
		return nil, resp, err
	}
	if out.Authorization == nil {
		// Vercel's CLI gives up here ("Failed to get an authorization
		// state. If the problem persists, please contact support."): a
		// state the API could not give now, worth asking again later.
		return nil, resp, ErrNoAuthorization
	}
	if out.Authorization.ID == "" {
		return nil, resp, &DecodeError{Endpoint: EndpointAuthorize, StatusCode: resp.StatusCode, Err: errors.New("answer has no authorization id")}
	}
	return out.Authorization, resp, nil
}

// ErrNoAuthorization is an authorization answer of {"authorization":null}.
// It is transient: asked again later, the API may have one.
var ErrNoAuthorization = errors.New("integrations.authorize: the API answered no authorization state")

// GetAuthorization reads a billing authorization again, to follow one
// that was pending. It shares the authorize budget (EndpointAuthorize).
//
// Vercel API: GET /v1/integrations/billing/authorization/{id}.
// Undocumented: the route comes from Vercel's CLI, which reads the answer
// as the authorization itself; the create call's envelope,
// {"authorization":{…}}, is read too.
func (c *Client) GetAuthorization(ctx context.Context, id string) (*Authorization, *Response, error) {
	seg, err := segment(EndpointAuthorize, "id", id)
	if err != nil {
		return nil, nil, err
	}
	var raw json.RawMessage
	resp, err := c.do(ctx, request{ep: EndpointAuthorize, method: http.MethodGet, path: "/v1/integrations/billing/authorization/" + seg}, &raw)
	if err != nil {
		return nil, resp, err
	}
	var env struct {
		Authorization *Authorization `json:"authorization"`
	}
	var a Authorization
	if json.Unmarshal(raw, &env) == nil && env.Authorization != nil {
		a = *env.Authorization
	} else if err := json.Unmarshal(raw, &a); err != nil {
		return nil, resp, &DecodeError{Endpoint: EndpointAuthorize, StatusCode: resp.StatusCode, Err: err}
	}
	if a.ID == "" || a.Status == "" {
		return nil, resp, &DecodeError{Endpoint: EndpointAuthorize, StatusCode: resp.StatusCode, Err: errors.New("answer has no authorization id or status")}
	}
	return &a, resp, nil
}

// CreateStore creates a database through the integration.
//
// Vercel API: POST /v1/storage/stores/integration, the route of Prisma's
// guide (undocumented). Should it answer 404 or 410 (gone from the API),
// the documented POST /v1/storage/stores/integration/direct (operation
// createIntegrationStoreDirect, which creates the billing authorization
// itself) is used instead, then and for every later call of this Client;
// nothing was created by the refused call. The answer is {"store":{…}}.
func (c *Client) CreateStore(ctx context.Context, req CreateStoreRequest) (*Store, *Response, error) {
	if req.Source == "" {
		req.Source = "marketplace"
	}
	if !c.learned.storeDirect.Load() {
		st, resp, err := c.createStore(ctx, "/v1/storage/stores/integration", req)
		var apiErr *APIError
		if !errors.As(err, &apiErr) || (apiErr.StatusCode != http.StatusNotFound && apiErr.StatusCode != http.StatusGone) {
			return st, resp, err
		}
		c.learned.storeDirect.Store(true)
	}
	// The documented route takes no authorization id: it authorizes
	// by itself.
	req.AuthorizationID = ""
	return c.createStore(ctx, "/v1/storage/stores/integration/direct", req)
}

func (c *Client) createStore(ctx context.Context, path string, req CreateStoreRequest) (*Store, *Response, error) {
	r, err := jsonRequest(EndpointCreateStore, http.MethodPost, path, req)
	if err != nil {
		return nil, nil, err
	}
	var out struct {
		Store *Store `json:"store"`
	}
	resp, err := c.do(ctx, r, &out)
	if err != nil {
		return nil, resp, err
	}
	if out.Store == nil || out.Store.ID == "" {
		return nil, resp, &DecodeError{Endpoint: EndpointCreateStore, StatusCode: resp.StatusCode, Err: errors.New("answer has no store id")}
	}
	return out.Store, resp, nil
}

// StoreRouteDirect reports whether the client creates stores through the
// documented …/integration/direct route, the guide's having been refused.
func (c *Client) StoreRouteDirect() bool { return c.learned.storeDirect.Load() }

// DeleteStore deletes a database created by CreateStore.
//
// Vercel API: DELETE /v1/storage/stores/integration/{storeId}.
// Undocumented: the route comes from Vercel's CLI.
func (c *Client) DeleteStore(ctx context.Context, storeID string) (*Response, error) {
	seg, err := segment(EndpointDeleteStore, "storeID", storeID)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, request{ep: EndpointDeleteStore, method: http.MethodDelete, path: "/v1/storage/stores/integration/" + seg}, nil)
}

// DisconnectStore disconnects a store from every project it is connected
// to, as Vercel's CLI does before it deletes a store.
//
// Vercel API: DELETE /v1/storage/stores/{storeId}/connections.
// Undocumented: the route comes from Vercel's CLI. It shares the
// connections' budget (EndpointConnectStore).
func (c *Client) DisconnectStore(ctx context.Context, storeID string) (*Response, error) {
	seg, err := segment(EndpointConnectStore, "storeID", storeID)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, request{ep: EndpointConnectStore, method: http.MethodDelete, path: "/v1/storage/stores/" + seg + "/connections"}, nil)
}

// ListStores lists the team's stores (databases) as Vercel's CLI lists
// them with a team's token; Resource.InternalID is a store's id.
//
// Vercel API: GET /v1/storage/stores. Undocumented: the route and the
// answer, {"stores":[{id, name, status, externalResourceId, …}]}, come
// from Vercel's CLI (get-resources.ts).
func (c *Client) ListStores(ctx context.Context) ([]Resource, *Response, error) {
	var out struct {
		Stores []struct {
			ID                 string `json:"id"`
			Name               string `json:"name"`
			Status             string `json:"status"`
			ExternalResourceID string `json:"externalResourceId"`
		} `json:"stores"`
	}
	resp, err := c.do(ctx, request{ep: EndpointListStores, method: http.MethodGet, path: "/v1/storage/stores"}, &out)
	if err != nil {
		return nil, resp, err
	}
	list := make([]Resource, 0, len(out.Stores))
	for _, st := range out.Stores {
		list = append(list, Resource{InternalID: st.ID, PartnerID: st.ExternalResourceID, Name: st.Name, Status: st.Status})
	}
	return list, resp, nil
}

// ListResources lists the resources (databases) of an integration
// installation; with deterministic store names it finds the store that a
// lost CreateStore answer created.
//
// Vercel API: GET /v1/installations/{integrationConfigurationId}/resources
// (operation get-integration-resources,
// https://vercel.com/docs/rest-api/marketplace/get-integration-resources).
func (c *Client) ListResources(ctx context.Context, integrationConfigurationID string) ([]Resource, *Response, error) {
	seg, err := segment(EndpointListResources, "integrationConfigurationID", integrationConfigurationID)
	if err != nil {
		return nil, nil, err
	}
	var out struct {
		Resources []Resource `json:"resources"`
	}
	resp, err := c.do(ctx, request{ep: EndpointListResources, method: http.MethodGet, path: "/v1/installations/" + seg + "/resources"}, &out)
	if err != nil {
		return nil, resp, err
	}
	if out.Resources == nil {
		out.Resources = []Resource{}
	}
	return out.Resources, resp, nil
}

// ConnectStore connects a store to a project, which injects DATABASE_URL
// and friends into the project's environment. Success is a 201 without a
// body. A store that is already connected (a 409, or an error whose
// message says "already connected") also returns a nil error, so that a
// retried step succeeds; the Response then holds the answer's status.
//
// Vercel API: POST /v1/integrations/installations/{integrationConfigurationId}/resources/{resourceId}/connections
// (operation connectIntegrationResourceToProject,
// https://vercel.com/docs/rest-api/integrations/connect-integration-resource-to-project),
// or with WithConnectPath(ConnectPathWithProduct) the form of Prisma's guide,
// …/installations/{configId}/products/{productId}/resources/{storeId}/connections.
func (c *Client) ConnectStore(ctx context.Context, req ConnectStoreRequest) (*Response, error) {
	const ep = EndpointConnectStore
	cfg, err := segment(ep, "IntegrationConfigurationID", req.IntegrationConfigurationID)
	if err != nil {
		return nil, err
	}
	store, err := segment(ep, "StoreID", req.StoreID)
	if err != nil {
		return nil, err
	}
	if req.ProjectID == "" {
		return nil, &InvalidArgumentError{Endpoint: ep, Argument: "ProjectID", Reason: "must not be empty"}
	}
	path := "/v1/integrations/installations/" + cfg
	if c.cfg.connectPath == ConnectPathWithProduct {
		product, err := segment(ep, "ProductID", req.ProductID)
		if err != nil {
			return nil, err
		}
		path += "/products/" + product
	}
	path += "/resources/" + store + "/connections"

	r, err := jsonRequest(ep, http.MethodPost, path, struct {
		ProjectID string `json:"projectId"`
	}{req.ProjectID})
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, r, nil)
	if err != nil && alreadyConnected(err) {
		return resp, nil
	}
	return resp, err
}

// alreadyConnected recognises the answers that mean the connection exists.
// Rate and plan limits are excluded whatever their message says.
func alreadyConnected(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	var (
		rl *RateLimitError
		pl *PlanLimitError
	)
	if errors.As(err, &rl) || errors.As(err, &pl) {
		return false
	}
	if ae.StatusCode == http.StatusConflict {
		return true
	}
	return ae.StatusCode >= 400 && ae.StatusCode < 500 &&
		strings.Contains(strings.ToLower(ae.Message), "already connected")
}
