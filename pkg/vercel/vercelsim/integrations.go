package vercelsim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
)

// The Prisma Postgres product is known by an id and a slug; the API takes
// either, so the simulator treats them as one product.
const (
	PrismaProductID   = "iap_yVdbiKqs5fLkYDAB"
	PrismaProductSlug = "prisma-postgres"
)

func canonicalProduct(idOrSlug string) string {
	if idOrSlug == PrismaProductSlug {
		return PrismaProductID
	}
	return idOrSlug
}

var configIDRE = regexp.MustCompile(`^icfg_[a-zA-Z0-9]+$`)

// The variables a Prisma Postgres connection injects into a project.
var storeSecretNames = []string{"DATABASE_URL", "POSTGRES_URL", "PRISMA_DATABASE_URL"}

// ---- authorizations (undocumented: shaped like Vercel's Prisma guide)

type authorizeRequest struct {
	IntegrationIDOrSlug        string  `json:"integrationIdOrSlug"`
	ProductID                  string  `json:"productId"`
	BillingPlanID              string  `json:"billingPlanId"`
	Metadata                   *string `json:"metadata"`
	IntegrationConfigurationID string  `json:"integrationConfigurationId"`
}

type authorizationEnvelope struct {
	Authorization authorizationBody `json:"authorization"`
}

type authorizationBody struct {
	ID                         string `json:"id"`
	IntegrationConfigurationID string `json:"integrationConfigurationId"`
	IntegrationIDOrSlug        string `json:"integrationIdOrSlug"`
	ProductID                  string `json:"productId"`
	BillingPlanID              string `json:"billingPlanId"`
	Status                     string `json:"status"`
	CreatedAt                  int64  `json:"createdAt"`
	UpdatedAt                  int64  `json:"updatedAt"`
}

// createAuthorization checks the body as strictly as the guide implies:
// metadata here is a JSON *string* (an object is refused), unlike the
// store's. Authorizations succeed at once: the free plan needs no payment.
func (s *Server) createAuthorization(c *call) reply {
	var req authorizeRequest
	if rep := decodeBody(c.r, nil, &req); rep != nil {
		return *rep
	}
	switch {
	case req.IntegrationIDOrSlug == "":
		return badRequest("Invalid request: missing required property `integrationIdOrSlug`.")
	case req.ProductID == "":
		return badRequest("Invalid request: missing required property `productId`.")
	case req.BillingPlanID == "":
		return badRequest("Invalid request: missing required property `billingPlanId`.")
	case !configIDRE.MatchString(req.IntegrationConfigurationID):
		return badRequest("Invalid request: `integrationConfigurationId` should match pattern \"^icfg_[a-zA-Z0-9]+$\".")
	}
	metadata := ""
	if req.Metadata != nil {
		metadata = *req.Metadata
		var obj map[string]any
		if err := json.Unmarshal([]byte(metadata), &obj); err != nil {
			return badRequest("Invalid request: `metadata` should be a JSON-encoded object.")
		}
	}
	if s.cfg.Quirks.Authorization == AuthorizationNull {
		return jsonReply(http.StatusOK, map[string]any{"authorization": nil})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	a := &authorization{
		seq: s.st.next(), id: s.newIDLocked("authz_", 24), configID: req.IntegrationConfigurationID,
		integration: req.IntegrationIDOrSlug, productID: req.ProductID, billingPlanID: req.BillingPlanID,
		metadata: metadata, createdAt: now, status: "succeeded",
	}
	switch q := s.cfg.Quirks.Authorization; q {
	case AuthorizationPending:
		a.status, a.pendingReads = "pending", s.cfg.Quirks.PendingPolls
	case AuthorizationRequiresAction, AuthorizationFailed:
		a.status = string(q)
	}
	s.st.authorizations[a.id] = a
	return jsonReply(http.StatusOK, authorizationEnvelope{a.body()})
}

func (a *authorization) body() authorizationBody {
	return authorizationBody{
		ID: a.id, IntegrationConfigurationID: a.configID, IntegrationIDOrSlug: a.integration,
		ProductID: a.productID, BillingPlanID: a.billingPlanID, Status: a.status,
		CreatedAt: a.createdAt.UnixMilli(), UpdatedAt: a.createdAt.UnixMilli(),
	}
}

func (s *Server) getAuthorization(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.authorizations[c.r.PathValue("id")]
	if a == nil {
		return notFound("Authorization not found")
	}
	if a.status == "pending" {
		if a.pendingReads--; a.pendingReads <= 0 {
			a.status = "succeeded"
		}
	}
	// Vercel's CLI reads this answer as the authorization itself.
	return jsonReply(http.StatusOK, a.body())
}

// ---- stores (undocumented; the body borrows the documented
// POST /v1/storage/stores/integration/direct answer's members)

type createStoreRequest struct {
	Name                       string         `json:"name"`
	IntegrationConfigurationID string         `json:"integrationConfigurationId"`
	IntegrationProductIDOrSlug string         `json:"integrationProductIdOrSlug"`
	BillingPlanID              string         `json:"billingPlanId"`
	Metadata                   map[string]any `json:"metadata"`
	AuthorizationID            string         `json:"authorizationId"`
	Source                     string         `json:"source"`
}

type storeEnvelope struct {
	Store storeBody `json:"store"`
}

type storeBody struct {
	ID                         string             `json:"id"`
	Name                       string             `json:"name"`
	Type                       string             `json:"type"`
	Status                     string             `json:"status"`
	OwnerID                    string             `json:"ownerId"`
	IntegrationConfigurationID string             `json:"integrationConfigurationId"`
	ExternalResourceID         string             `json:"externalResourceId"`
	ExternalResourceStatus     string             `json:"externalResourceStatus"`
	Product                    storeProductBody   `json:"product"`
	BillingPlan                storeBillingBody   `json:"billingPlan"`
	Metadata                   map[string]any     `json:"metadata"`
	ProjectsMetadata           []storeProjectBody `json:"projectsMetadata"`
	TotalConnectedProjects     int                `json:"totalConnectedProjects"`
	UsageQuotaExceeded         bool               `json:"usageQuotaExceeded"`
	Secrets                    []storeSecretBody  `json:"secrets"`
	CreatedAt                  int64              `json:"createdAt"`
	UpdatedAt                  int64              `json:"updatedAt"`
}

type storeProductBody struct {
	ID                         string               `json:"id"`
	Slug                       string               `json:"slug,omitempty"`
	Name                       string               `json:"name"`
	IntegrationConfigurationID string               `json:"integrationConfigurationId"`
	Integration                storeIntegrationBody `json:"integration"`
	SupportedProtocols         []string             `json:"supportedProtocols"`
}

type storeIntegrationBody struct {
	ID   string `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
	Icon string `json:"icon"`
}

// prismaIntegration is the integration behind the Prisma Postgres product.
var prismaIntegration = storeIntegrationBody{ID: "oac_prisma", Slug: "prisma", Name: "Prisma", Icon: "https://vercel.com/api/www/avatar?s=64&u=prisma"}

type storeBillingBody struct {
	ID                    string `json:"id"`
	Type                  string `json:"type"`
	Name                  string `json:"name"`
	Description           string `json:"description"`
	Scope                 string `json:"scope"`
	PaymentMethodRequired bool   `json:"paymentMethodRequired"`
}

type storeProjectBody struct {
	ID                   string   `json:"id"`
	ProjectID            string   `json:"projectId"`
	Name                 string   `json:"name"`
	Environments         []string `json:"environments"`
	EnvVarPrefix         *string  `json:"envVarPrefix"`
	EnvironmentVariables []string `json:"environmentVariables"`
}

type storeSecretBody struct {
	Name   string `json:"name"`
	Length int    `json:"length"`
}

// createStore creates a database. Names need not be unique (Vercel allows
// duplicates), which is exactly why a client must find its store by name
// before retrying: Stats.StoresCreated shows when it did not.
func (s *Server) createStore(c *call) reply {
	if s.cfg.Quirks.StoreRouteGone {
		return errorReply(http.StatusGone, apiError{Code: "gone", Message: "This endpoint is no longer available."})
	}
	return s.createStoreVia(c, false)
}

// createStoreDirect is the documented route, which takes no authorization
// id: it authorizes the billing plan itself.
func (s *Server) createStoreDirect(c *call) reply { return s.createStoreVia(c, true) }

func (s *Server) createStoreVia(c *call, direct bool) reply {
	var req createStoreRequest
	if rep := decodeBody(c.r, nil, &req); rep != nil {
		return *rep
	}
	if direct && req.AuthorizationID != "" {
		return badRequest("Invalid request: should NOT have additional property `authorizationId`.")
	}
	switch {
	case req.Name == "":
		return badRequest("Invalid request: missing required property `name`.")
	case len(req.Name) > 128:
		return badRequest("Invalid request: `name` should NOT be longer than 128 characters.")
	case !configIDRE.MatchString(req.IntegrationConfigurationID):
		return badRequest("Invalid request: `integrationConfigurationId` should match pattern \"^icfg_[a-zA-Z0-9]+$\".")
	case req.IntegrationProductIDOrSlug == "":
		return badRequest("Invalid request: missing required property `integrationProductIdOrSlug`.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.AuthorizationID != "" {
		a := s.st.authorizations[req.AuthorizationID]
		if a == nil || a.configID != req.IntegrationConfigurationID {
			return notFound("Authorization not found")
		}
		if a.status != "succeeded" {
			return badRequest("Authorization %s is %s", a.id, a.status)
		}
	}
	if rep, full := s.storeCapLocked(c); full {
		return rep
	}
	now := s.now()
	st := &store{
		seq: s.st.next(), id: s.newIDLocked("store_", 16), name: req.Name,
		configID: req.IntegrationConfigurationID, productID: req.IntegrationProductIDOrSlug,
		billingPlanID: req.BillingPlanID, authorizationID: req.AuthorizationID,
		externalID: "db_" + s.randLocked(lowerAlphaNum, 25), metadata: req.Metadata,
		createdAt: now, owner: c.team,
	}
	if st.owner == "" {
		st.owner = s.userID
	}
	st.password = s.randLocked(alphaNum, 32)
	for s.st.stores[st.id] != nil {
		st.id = s.newIDLocked("store_", 16)
	}
	s.st.stores[st.id] = st
	s.stats.storesCreated[st.name]++
	return jsonReply(http.StatusOK, storeEnvelope{s.storeBodyLocked(st)})
}

// secretValue is the connection string of one of a store's variables.
func (st *store) secretValue(name string) string {
	return fmt.Sprintf("postgres://%s:%s@db.prisma.io:5432/postgres?sslmode=require&var=%s",
		st.externalID, st.password, name)
}

func (s *Server) storeBodyLocked(st *store) storeBody {
	b := storeBody{
		ID: st.id, Name: st.name, Type: "integration", Status: "available", OwnerID: st.owner,
		IntegrationConfigurationID: st.configID, ExternalResourceID: st.externalID,
		ExternalResourceStatus: "ready",
		Product: storeProductBody{
			ID: canonicalProduct(st.productID), Slug: PrismaProductSlug, Name: "Prisma Postgres", IntegrationConfigurationID: st.configID,
			Integration: prismaIntegration, SupportedProtocols: []string{"storage"},
		},
		BillingPlan: storeBillingBody{ID: cmp.Or(st.billingPlanID, "free"), Type: "subscription", Name: "Free",
			Description: "Prisma Postgres on the free plan", Scope: "resource"},
		Metadata:               st.metadata,
		ProjectsMetadata:       []storeProjectBody{},
		TotalConnectedProjects: len(st.projects),
		Secrets:                make([]storeSecretBody, 0, len(storeSecretNames)),
		CreatedAt:              st.createdAt.UnixMilli(),
		UpdatedAt:              st.createdAt.UnixMilli(),
	}
	if canonicalProduct(st.productID) == PrismaProductID {
		b.Product.Slug, b.Product.Name = PrismaProductSlug, "Prisma Postgres"
	}
	if b.Metadata == nil {
		b.Metadata = map[string]any{}
	}
	for _, name := range storeSecretNames {
		b.Secrets = append(b.Secrets, storeSecretBody{Name: name, Length: len(st.secretValue(name))})
	}
	for _, pid := range st.projects {
		p := s.st.projects[pid]
		if p == nil {
			continue
		}
		b.ProjectsMetadata = append(b.ProjectsMetadata, storeProjectBody{
			ID: st.id + "_" + pid, ProjectID: pid, Name: p.name, Environments: slices.Clone(envTargets),
			EnvironmentVariables: slices.Clone(storeSecretNames),
		})
	}
	return b
}

// deleteStore removes a store and its connections, and with them the
// variables the connections injected. It answers 204 like the documented
// DELETE of an integration resource.
func (s *Server) deleteStore(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st.stores[c.r.PathValue("storeId")]
	if st == nil || st.owner != s.account(c) {
		return notFound("Store not found")
	}
	if len(st.projects) > 0 && s.cfg.Quirks.RefuseConnectedStoreDelete {
		return badRequest("The store %s is connected to %d project(s); disconnect it first.", st.id, len(st.projects))
	}
	for _, pid := range slices.Clone(st.projects) {
		s.removeConnectionLocked(connKey{st.id, pid})
	}
	delete(s.st.stores, st.id)
	return noContent(http.StatusNoContent)
}

// disconnectStore removes every connection of a store.
func (s *Server) disconnectStore(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st.stores[c.r.PathValue("storeId")]
	if st == nil || st.owner != s.account(c) {
		return notFound("Store not found")
	}
	for _, pid := range slices.Clone(st.projects) {
		s.removeConnectionLocked(connKey{st.id, pid})
	}
	return noContent(http.StatusNoContent)
}

// ---- connections

type connectRequest struct {
	ProjectID string `json:"projectId"`
}

// connectStore connects a store to a project and injects the store's
// variables into the project. A second connection of the same pair answers
// 409 with code "conflict" and a message saying "already connected" (the
// documented operation lists no status for it; a client should treat it as
// done).
func (s *Server) connectStore(c *call) reply {
	var req connectRequest
	if rep := decodeBody(c.r, nil, &req); rep != nil {
		return *rep
	}
	if req.ProjectID == "" {
		return badRequest("Invalid request: missing required property `projectId`.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st.stores[c.r.PathValue("storeId")]
	if st == nil || st.configID != c.r.PathValue("configId") || st.owner != s.account(c) {
		return notFound("Resource not found")
	}
	if product := c.r.PathValue("productId"); product != "" && canonicalProduct(product) != canonicalProduct(st.productID) {
		return notFound("Resource not found for this product")
	}
	p := s.st.lookupProject(s.account(c), req.ProjectID)
	if p == nil {
		return notFound("Project not found")
	}
	k := connKey{st.id, p.id}
	if s.st.connections[k] != nil {
		return conflict(fmt.Sprintf("The resource %s is already connected to the project %s.", st.id, p.id))
	}
	now := s.now()
	s.st.connections[k] = &connection{seq: s.st.next(), storeID: st.id, projectID: p.id, configID: st.configID, createdAt: now}
	st.projects = append(st.projects, p.id)
	for _, name := range storeSecretNames {
		if slices.ContainsFunc(p.env, func(e envVar) bool { return e.key == name }) {
			continue // a variable the project already has wins
		}
		p.env = append(p.env, envVar{
			id: s.randLocked(alphaNum, 16), key: name, value: st.secretValue(name), typ: "encrypted",
			target: slices.Clone(envTargets), configurationID: st.configID, storeID: st.id, createdAt: now,
		})
	}
	p.updatedAt = now
	return noContent(http.StatusCreated)
}

// removeConnectionLocked undoes a connection, including the variables it
// injected.
func (s *Server) removeConnectionLocked(k connKey) {
	delete(s.st.connections, k)
	if st := s.st.stores[k.storeID]; st != nil {
		st.projects = slices.DeleteFunc(st.projects, func(id string) bool { return id == k.projectID })
	}
	if p := s.st.projects[k.projectID]; p != nil {
		p.env = slices.DeleteFunc(p.env, func(e envVar) bool { return e.storeID == k.storeID })
	}
}

// ---- resources (documented under the marketplace API)

type resourcesBody struct {
	Resources []resourceBody `json:"resources"`
}

type resourceBody struct {
	PartnerID     string         `json:"partnerId"`
	InternalID    string         `json:"internalId"`
	Name          string         `json:"name"`
	Status        string         `json:"status"`
	ProductID     string         `json:"productId"`
	BillingPlanID string         `json:"billingPlanId,omitempty"`
	Metadata      map[string]any `json:"metadata,omitempty"`
}

// listStores lists the calling team's stores, oldest first, as Vercel's
// CLI reads them (GET /v1/storage/stores).
func (s *Server) listStores(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := c.team
	if owner == "" {
		owner = s.userID
	}
	var stores []*store
	for _, st := range s.st.stores {
		if st.owner == owner {
			stores = append(stores, st)
		}
	}
	slices.SortFunc(stores, func(a, b *store) int { return int(a.seq - b.seq) })
	out := struct {
		Stores []storeBody `json:"stores"`
	}{Stores: make([]storeBody, 0, len(stores))}
	for _, st := range stores {
		out.Stores = append(out.Stores, s.storeBodyLocked(st))
	}
	return jsonReply(http.StatusOK, out)
}

// listResources lists the stores of one integration configuration, oldest
// first; an unknown configuration has none.
func (s *Server) listResources(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	configID := c.r.PathValue("configId")
	var stores []*store
	for _, st := range s.st.stores {
		if st.configID == configID {
			stores = append(stores, st)
		}
	}
	slices.SortFunc(stores, func(a, b *store) int { return int(a.seq - b.seq) })
	body := resourcesBody{Resources: make([]resourceBody, 0, len(stores))}
	for _, st := range stores {
		body.Resources = append(body.Resources, resourceBody{
			PartnerID: st.externalID, InternalID: st.id, Name: st.name, Status: "ready",
			ProductID: canonicalProduct(st.productID), BillingPlanID: st.billingPlanID, Metadata: st.metadata,
		})
	}
	return jsonReply(http.StatusOK, body)
}
