package vercel

import (
	"errors"
	"io"
	"net/http"
	"reflect"
	"testing"
)

func TestAuthorizeIntegration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		slug string
		want string
	}{
		{"default slug", "", "prisma"},
		{"explicit slug", "other", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.mux.HandleFunc("POST /v1/integrations/billing/authorization", func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodPost, "/v1/integrations/billing/authorization", nil)
				checkJSONBody(t, r, `{"integrationIdOrSlug":"`+tt.want+`","productId":"iap_yVdbiKqs5fLkYDAB","billingPlanId":"pro",
					"metadata":"{\"region\":\"iad1\"}","integrationConfigurationId":"icfg_1"}`)
				writeJSON(w, http.StatusOK, `{"authorization":{"id":"auth_1","integrationConfigurationId":"icfg_1","status":"pending","createdAt":1}}`)
			})
			a, _, err := b.client.AuthorizeIntegration(t.Context(), AuthorizeRequest{
				IntegrationIDOrSlug:        tt.slug,
				ProductID:                  "iap_yVdbiKqs5fLkYDAB",
				BillingPlanID:              "pro",
				Metadata:                   `{"region":"iad1"}`,
				IntegrationConfigurationID: "icfg_1",
			})
			if err != nil {
				t.Fatal(err)
			}
			want := &Authorization{ID: "auth_1", IntegrationConfigurationID: "icfg_1", Status: "pending"}
			if !reflect.DeepEqual(a, want) {
				t.Errorf("authorization = %+v, want %+v", a, want)
			}
		})
	}
}

// An answer without an authorization state (null, or none at all) is
// ErrNoAuthorization, a transient error: Vercel's CLI gives up and asks
// the user to try again.
func TestAuthorizeIntegrationWithoutAuthorization(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`{"authorization":null}`, `{"id":"auth_1"}`} {
		b := setup(t)
		b.mux.HandleFunc("POST /v1/integrations/billing/authorization", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, body)
		})
		_, _, err := b.client.AuthorizeIntegration(t.Context(), AuthorizeRequest{})
		if !errors.Is(err, ErrNoAuthorization) || Classify(err).Class != Transient {
			t.Fatalf("%s: err = %v (%v), want ErrNoAuthorization, transient", body, err, Classify(err))
		}
	}
}

// GetAuthorization reads the authorization itself (what Vercel's CLI
// reads) or inside the create call's envelope.
func TestGetAuthorization(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`{"id":"authz_1","status":"pending"}`, `{"authorization":{"id":"authz_1","status":"pending"}}`} {
		b := setup(t)
		b.mux.HandleFunc("GET /v1/integrations/billing/authorization/authz_1", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, body)
		})
		a, _, err := b.client.GetAuthorization(t.Context(), "authz_1")
		if err != nil || a.ID != "authz_1" || a.Status != AuthorizationPending {
			t.Fatalf("%s: %+v, %v", body, a, err)
		}
	}
}

func TestCreateStore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("POST /v1/storage/stores/integration", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodPost, "/v1/storage/stores/integration", nil)
		checkJSONBody(t, r, `{"name":"db-req1","integrationConfigurationId":"icfg_1","integrationProductIdOrSlug":"prisma-postgres",
			"billingPlanId":"free","metadata":{"region":"iad1"},"authorizationId":"auth_1","source":"marketplace"}`)
		writeJSON(w, http.StatusOK, `{"store":{"id":"store_1","name":"db-req1","status":"available","type":"integration","secrets":[]}}`)
	})
	s, _, err := b.client.CreateStore(t.Context(), CreateStoreRequest{
		Name:                       "db-req1",
		IntegrationConfigurationID: "icfg_1",
		IntegrationProductIDOrSlug: "prisma-postgres",
		BillingPlanID:              "free",
		Metadata:                   map[string]any{"region": "iad1"},
		AuthorizationID:            "auth_1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (&Store{ID: "store_1", Name: "db-req1", Status: "available"}); !reflect.DeepEqual(s, want) {
		t.Errorf("store = %+v, want %+v", s, want)
	}
}

func TestDeleteStore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("DELETE /v1/storage/stores/integration/{id}", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodDelete, "/v1/storage/stores/integration/store_1", nil)
		w.WriteHeader(http.StatusOK)
	})
	if _, err := b.client.DeleteStore(t.Context(), "store_1"); err != nil {
		t.Fatal(err)
	}
}

func TestListResources(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer string
		want   []Resource
	}{
		{"two", `{"resources":[
			{"internalId":"store_1","partnerId":"p1","name":"db-a","status":"ready","productId":"prisma-postgres","metadata":{"region":"iad1","n":1,"l":[1,2]},"notification":{"level":"info","title":"t"}},
			{"internalId":"store_2","partnerId":"p2","name":"db-b","status":"pending","productId":"prisma-postgres"}]}`,
			[]Resource{
				{InternalID: "store_1", PartnerID: "p1", Name: "db-a", Status: "ready", ProductID: "prisma-postgres"},
				{InternalID: "store_2", PartnerID: "p2", Name: "db-b", Status: "pending", ProductID: "prisma-postgres"},
			}},
		{"none", `{"resources":[]}`, []Resource{}},
		{"missing list", `{}`, []Resource{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.mux.HandleFunc("GET /v1/installations/{id}/resources", func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodGet, "/v1/installations/icfg_1/resources", nil)
				writeJSON(w, http.StatusOK, tt.answer)
			})
			got, _, err := b.client.ListResources(t.Context(), "icfg_1")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("resources = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestConnectStore(t *testing.T) {
	t.Parallel()
	documented := "/v1/integrations/installations/icfg_1/resources/store_1/connections"
	withProduct := "/v1/integrations/installations/icfg_1/products/prisma-postgres/resources/store_1/connections"
	tests := []struct {
		name    string
		opts    []Option
		path    string
		status  int
		answer  string
		wantErr bool
	}{
		{"documented form, 201 without body", nil, documented, http.StatusCreated, "", false},
		{"documented form explicit", []Option{WithConnectPath(ConnectPathDocumented)}, documented, http.StatusCreated, "", false},
		{"Prisma guide form", []Option{WithConnectPath(ConnectPathWithProduct)}, withProduct, http.StatusCreated, "", false},
		{"200 with a body", nil, documented, http.StatusOK, `{"ok":true}`, false},
		{"409 counts as connected", nil, documented, http.StatusConflict, `{"error":{"code":"conflict","message":"exists"}}`, false},
		{"already connected message", nil, documented, http.StatusBadRequest, `{"error":{"code":"bad_request","message":"The resource is Already Connected to this project."}}`, false},
		{"404 is an error", nil, documented, http.StatusNotFound, `{"error":{"code":"not_found","message":"store not found"}}`, true},
		{"400 other is an error", nil, documented, http.StatusBadRequest, `{"error":{"code":"bad_request","message":"projectId is required"}}`, true},
		{"429 is an error whatever it says", nil, documented, http.StatusTooManyRequests, `{"error":{"code":"rate_limited","message":"already connected too often"}}`, true},
		{"500 is an error", nil, documented, http.StatusInternalServerError, `{"error":{"code":"internal_server_error","message":"already connected?"}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.opts...)
			b.mux.HandleFunc("POST "+tt.path, func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodPost, tt.path, nil)
				checkJSONBody(t, r, `{"projectId":"prj_1"}`)
				if tt.answer == "" {
					w.WriteHeader(tt.status)
					return
				}
				writeJSON(w, tt.status, tt.answer)
			})
			resp, err := b.client.ConnectStore(t.Context(), ConnectStoreRequest{
				IntegrationConfigurationID: "icfg_1",
				ProductID:                  "prisma-postgres",
				StoreID:                    "store_1",
				ProjectID:                  "prj_1",
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %t", err, tt.wantErr)
			}
			if resp == nil || resp.StatusCode != tt.status {
				t.Errorf("Response = %+v, want status %d", resp, tt.status)
			}
		})
	}
}

func TestConnectStoreLimiterSeesTheConflict(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	b := setup(t, WithLimiter(rec))
	b.mux.HandleFunc("POST /v1/integrations/installations/{c}/resources/{s}/connections", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		writeJSON(w, http.StatusConflict, `{"error":{"code":"conflict","message":"exists"}}`)
	})
	if _, err := b.client.ConnectStore(t.Context(), ConnectStoreRequest{IntegrationConfigurationID: "c", StoreID: "s", ProjectID: "p"}); err != nil {
		t.Fatal(err)
	}
	_, obs, _ := rec.snapshot()
	var ae *APIError
	if len(obs) != 1 || obs[0].status != http.StatusConflict || !errors.As(obs[0].err, &ae) {
		t.Errorf("observations = %+v, want the 409 and its error: the budget hears what the API said", obs)
	}
}
