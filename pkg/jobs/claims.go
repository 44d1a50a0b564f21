package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/deployq/deployq/internal/streamget"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClaimAsk is the body of a claim refresh (ClaimSubject).
type ClaimAsk struct {
	// ReturnURL is where the claim page sends the user back to.
	ReturnURL string `json:"returnUrl,omitempty"`
	// Fresh asks for a new code even when the current one has hours left.
	Fresh bool `json:"fresh,omitempty"`
}

// ClaimAnswer is the workers' answer to a claim refresh: a claim URL, or
// the reason there is none (Error.Code app_claimed, app_expired,
// app_unknown, app_not_live, or claim_failed with the API's reason).
type ClaimAnswer struct {
	Code      string      `json:"code,omitempty"`
	ClaimURL  string      `json:"claimUrl,omitempty"`
	ExpiresAt time.Time   `json:"expiresAt,omitzero"`
	Fresh     bool        `json:"fresh,omitempty"` // a new code was issued
	Error     *EventError `json:"error,omitempty"`
}

// Codes of a refused claim refresh, besides CodeAppClaimed and
// CodeAppExpired.
const (
	CodeAppUnknown  = "app_unknown"
	CodeAppNotLive  = "app_not_live"
	CodeClaimFailed = "claim_failed"
)

// ClaimError is a claim refresh the workers refused, with their reason.
type ClaimError struct{ EventError }

func (e *ClaimError) Error() string { return e.Code + ": " + e.Message }

// claimAskTimeout bounds a claim refresh without a deadline of its own.
const claimAskTimeout = 30 * time.Second

// ErrNoWorker means no worker answered a claim refresh in time.
var ErrNoWorker = errors.New("no worker answered: is the worker fleet running?")

// RefreshClaim asks the workers for a claim URL for an unclaimed app: its
// current code while it has more than ClaimReuseMargin to live (unless
// ask.Fresh), else a fresh one, which the workers record as the app's. A
// refusal is a *ClaimError; a fleet that does not answer, ErrNoWorker.
// A tenant's client asks for its own apps only.
func (c *Client) RefreshClaim(ctx context.Context, tenant, app string, ask ClaimAsk) (*ClaimAnswer, error) {
	if err := c.forTenant(&tenant); err != nil {
		return nil, err
	}
	if !ValidAppKey(tenant, app) {
		return nil, fmt.Errorf("refresh claim: %q/%q is not a tenant and app id", tenant, app)
	}
	body, err := json.Marshal(ask)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		// The worker may wait for the API budget before it asks Vercel.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, claimAskTimeout)
		defer cancel()
	}
	m, err := c.js.Conn().RequestWithContext(ctx, ClaimSubject(tenant, app), body)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil) {
			return nil, ErrNoWorker
		}
		return nil, fmt.Errorf("refresh claim: %w", err)
	}
	var ans ClaimAnswer
	if err := json.Unmarshal(m.Data, &ans); err != nil {
		return nil, fmt.Errorf("refresh claim: decode answer: %w", err)
	}
	if ans.Error != nil {
		return nil, &ClaimError{*ans.Error}
	}
	return &ans, nil
}

// App reads an app's record; nil when the tenant has no such app. It is a
// direct get, which a tenant's user may make for its own apps.
func (c *Client) App(ctx context.Context, tenant, app string) (*App, error) {
	if err := c.forTenant(&tenant); err != nil {
		return nil, err
	}
	if !ValidAppKey(tenant, app) {
		return nil, fmt.Errorf("app: %q/%q is not a tenant and app id", tenant, app)
	}
	ctx, cancel := c.apiCtx(ctx)
	defer cancel()
	return readAppDirect(ctx, c, AppKey(tenant, app))
}

// readAppDirect reads an app's record by a direct get of its key.
func readAppDirect(ctx context.Context, c *Client, key string) (*App, error) {
	m, err := streamget.Direct(ctx, c.js.Conn(), "KV_"+BucketApps, "$KV."+BucketApps+"."+key, jetstream.ErrKeyNotFound)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read app: %w", err)
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return nil, nil
	}
	a := new(App)
	if err := json.Unmarshal(m.Data, a); err != nil {
		return nil, fmt.Errorf("decode app: %w", err)
	}
	return a, nil
}

// Apps lists the apps of tenant ("": every tenant's), in key order. It
// reads the whole bucket's current values: an admin's call, for listings
// and inventories.
func (c *Client) Apps(ctx context.Context, tenant string) ([]App, error) {
	if c.cfg.Tenant != "" {
		return nil, errors.New("apps: listing apps is the admin's; a tenant reads its apps one by one (App)")
	}
	kv, err := c.js.KeyValue(ctx, BucketApps)
	if err != nil {
		return nil, fmt.Errorf("apps: %w", err)
	}
	return ListApps(ctx, kv, tenant)
}

// ListApps reads the current record of every app of tenant ("": all) in
// kv, in key order.
func ListApps(ctx context.Context, kv jetstream.KeyValue, tenant string) ([]App, error) {
	filter := ">"
	if tenant != "" {
		filter = tenant + ".>"
	}
	w, err := kv.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []App
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				slices.SortFunc(out, func(a, b App) int { return strings.Compare(AppKey(a.Tenant, a.ID), AppKey(b.Tenant, b.ID)) })
				return out, nil
			}
			var a App
			if json.Unmarshal(e.Value(), &a) == nil && a.ID != "" {
				out = append(out, a)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("list apps: %w", context.Cause(ctx))
		}
	}
}
