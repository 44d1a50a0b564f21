package vercel

import (
	"net/url"
	"time"
)

// Endpoint names one API route template. It is the key of a rate-limit
// bucket and the value of the "endpoint" metric label, so it never holds an
// id: the set of values is fixed by the constants below.
type Endpoint string

// The routes the pipeline uses. Vercel limits each endpoint on its own, so
// the budget keeps one bucket per (team, Endpoint).
const (
	EndpointCreateProject   Endpoint = "projects.create"
	EndpointGetProject      Endpoint = "projects.get"
	EndpointDeleteProject   Endpoint = "projects.delete"
	EndpointTransferRequest Endpoint = "projects.transfer_request"
	// EndpointAcceptTransfer is the claiming account's call (what
	// Vercel's claim page makes); deployq never makes it, its tests do.
	EndpointAcceptTransfer   Endpoint = "projects.transfer_accept"
	EndpointAddDomain        Endpoint = "projects.domains.add"
	EndpointGetDomain        Endpoint = "projects.domains.get"
	EndpointAuthorize        Endpoint = "integrations.authorize"
	EndpointCreateStore      Endpoint = "stores.create"
	EndpointDeleteStore      Endpoint = "stores.delete"
	EndpointListResources    Endpoint = "integrations.resources.list"
	EndpointListStores       Endpoint = "stores.list"
	EndpointConnectStore     Endpoint = "integrations.resources.connect"
	EndpointUploadFile       Endpoint = "files.upload"
	EndpointCreateDeployment Endpoint = "deployments.create"
	EndpointGetDeployment    Endpoint = "deployments.get"
	EndpointDeploymentEvents Endpoint = "deployments.events"
	EndpointListDeployments  Endpoint = "deployments.list"
)

// Endpoints lists every Endpoint, in pipeline order; metrics and the budget
// use it to pre-create their series and buckets.
func Endpoints() []Endpoint {
	return []Endpoint{
		EndpointCreateProject, EndpointGetProject, EndpointAuthorize,
		EndpointCreateStore, EndpointListStores, EndpointListResources, EndpointConnectStore,
		EndpointUploadFile, EndpointCreateDeployment, EndpointGetDeployment,
		EndpointDeploymentEvents, EndpointListDeployments, EndpointTransferRequest,
		EndpointDeleteProject, EndpointDeleteStore,
		EndpointAddDomain, EndpointGetDomain, EndpointAcceptTransfer,
	}
}

// EnvVar is one environment variable given to a new project.
type EnvVar struct {
	Key    string   `json:"key"`
	Value  string   `json:"value"`
	Type   string   `json:"type"`   // "encrypted" or "plain"; Defaults to "encrypted".
	Target []string `json:"target"` // Defaults to production, preview, development.
}

// CreateProjectRequest is the body of POST /v11/projects.
type CreateProjectRequest struct {
	Name                 string   `json:"name"`
	Framework            string   `json:"framework,omitempty"`
	EnvironmentVariables []EnvVar `json:"environmentVariables,omitempty"`
}

// Project is the part of Vercel's project object the pipeline reads.
type Project struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	AccountID string `json:"accountId"`
	Framework string `json:"framework,omitempty"`
	CreatedAt int64  `json:"createdAt,omitempty"` // epoch ms
}

// AuthorizeRequest is the body of POST /v1/integrations/billing/authorization.
type AuthorizeRequest struct {
	IntegrationIDOrSlug        string `json:"integrationIdOrSlug"` // Defaults to "prisma".
	ProductID                  string `json:"productId"`
	BillingPlanID              string `json:"billingPlanId"`
	Metadata                   string `json:"metadata"` // a JSON string, e.g. {"region":"iad1"}
	IntegrationConfigurationID string `json:"integrationConfigurationId"`
}

// Authorization is the integration billing authorization.
type Authorization struct {
	ID                         string `json:"id"`
	IntegrationConfigurationID string `json:"integrationConfigurationId"`
	Status                     string `json:"status"` // one of the Authorization* statuses
}

// The statuses of a billing authorization. A pending one is asked again
// until it is decided (Vercel's CLI asks every 200 ms); requires_action
// waits for a person to confirm the team's payment method in a browser
// (AuthorizationActionURL); only a succeeded one creates a store.
const (
	AuthorizationPending        = "pending"
	AuthorizationRequiresAction = "requires_action"
	AuthorizationSucceeded      = "succeeded"
	AuthorizationFailed         = "failed"
)

// AuthorizationActionURL is where a person confirms an authorization that
// requires action: the page Vercel's CLI opens for it.
func AuthorizationActionURL(teamID, authorizationID string) string {
	q := url.Values{"authorizationId": {authorizationID}, "cmd": {"authorize"}}
	if teamID != "" {
		q.Set("teamId", teamID)
	}
	return "https://vercel.com/api/marketplace/cli?" + q.Encode()
}

// CreateStoreRequest is the body of POST /v1/storage/stores/integration.
type CreateStoreRequest struct {
	Name                       string         `json:"name"`
	IntegrationConfigurationID string         `json:"integrationConfigurationId"`
	IntegrationProductIDOrSlug string         `json:"integrationProductIdOrSlug"`
	BillingPlanID              string         `json:"billingPlanId"`
	Metadata                   map[string]any `json:"metadata,omitempty"` // an object here, unlike AuthorizeRequest
	AuthorizationID            string         `json:"authorizationId,omitempty"`
	Source                     string         `json:"source"` // Defaults to "marketplace".
}

// Store is a database created through the integration.
type Store struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status,omitempty"`
}

// Resource is one entry of GET /v1/installations/{configId}/resources.
type Resource struct {
	InternalID string `json:"internalId"`
	PartnerID  string `json:"partnerId"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	ProductID  string `json:"productId"`
}

// ConnectStoreRequest names the store and project to connect.
type ConnectStoreRequest struct {
	IntegrationConfigurationID string
	ProductID                  string // used only by the Prisma guide's path form
	StoreID                    string
	ProjectID                  string
}

// DeploymentFile is one file of a deployment, referenced by its SHA-1.
type DeploymentFile struct {
	File string `json:"file"`
	SHA  string `json:"sha"`
	Size int64  `json:"size"`
}

// ProjectSettings is needed on a project's first deployment.
type ProjectSettings struct {
	Framework string `json:"framework,omitempty"`
}

// CreateDeploymentRequest is the body of POST /v13/deployments.
type CreateDeploymentRequest struct {
	Name            string            `json:"name"`
	Project         string            `json:"project,omitempty"`
	Files           []DeploymentFile  `json:"files"`
	ProjectSettings *ProjectSettings  `json:"projectSettings,omitempty"`
	Target          string            `json:"target,omitempty"`
	Meta            map[string]string `json:"meta,omitempty"` // returned by ListDeployments: finds a deployment whose create response was lost
}

// Deployment ready states.
const (
	StateQueued       = "QUEUED"
	StateInitializing = "INITIALIZING"
	StateBuilding     = "BUILDING"
	StateReady        = "READY"
	StateError        = "ERROR"
	StateCanceled     = "CANCELED"
	StateBlocked      = "BLOCKED"
)

// Deployment is the part of Vercel's deployment object the pipeline reads.
type Deployment struct {
	ID         string   `json:"id"`
	URL        string   `json:"url"`
	Name       string   `json:"name"`
	ProjectID  string   `json:"projectId"`
	ReadyState string   `json:"readyState"`
	Alias      []string `json:"alias,omitempty"`
	// AliasAssigned turns true some time after READY, once the
	// deployment's domains (the production domain among them) point at
	// it. Vercel answers a boolean, a timestamp or null; all read here.
	AliasAssigned bool `json:"aliasAssigned"`
	// AliasError says why the domains could not be assigned.
	AliasError   *AliasError       `json:"aliasError,omitempty"`
	ErrorCode    string            `json:"errorCode,omitempty"`
	ErrorMessage string            `json:"errorMessage,omitempty"`
	Meta         map[string]string `json:"meta,omitempty"`
	CreatedAt    int64             `json:"createdAt,omitempty"`  // epoch ms
	BuildingAt   int64             `json:"buildingAt,omitempty"` // epoch ms
	Ready        int64             `json:"ready,omitempty"`      // epoch ms, once READY
}

// AliasError is a deployment's aliasError.
type AliasError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Terminal reports whether the deployment will not change state again.
func (d *Deployment) Terminal() bool {
	switch d.ReadyState {
	case StateReady, StateError, StateCanceled:
		return true
	}
	return false
}

// ListDeploymentsOptions filters GET /v6/deployments.
type ListDeploymentsOptions struct {
	ProjectID string
	Limit     int // Defaults to 20.
}

// TransferRequest is the optional body of POST /projects/{id}/transfer-request.
type TransferRequest struct {
	CallbackURL    string `json:"callbackUrl,omitempty"`
	CallbackSecret string `json:"callbackSecret,omitempty"`
}

// TransferCode is the answer of a transfer request; it lives 24 h.
type TransferCode struct {
	Code string `json:"code"`
}

// RateLimit is what the API said about an endpoint's budget on one answer,
// from X-RateLimit-* headers or a 429/402 body's limit object. Zero fields
// mean "not said".
type RateLimit struct {
	Limit     int       // X-RateLimit-Limit or limit.total
	Remaining int       // X-RateLimit-Remaining or limit.remaining; valid only when Known
	Reset     time.Time // X-RateLimit-Reset or limit.reset / resetMs
	Known     bool      // Remaining was reported
}
