package worker

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/deployq/deployq/internal/fair"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go"
)

// Claims: a claim code is issued with a callback to this worker's HTTP
// server when the worker has a public address (AppsConfig.CallbackURL);
// Vercel calls it when the user accepts the transfer, and ClaimHandler
// records the claim and publishes the app's claimed event. Claims are
// also found without it, by the upkeep's checks (upkeep.go). A user whose
// code expired gets a fresh one from RefreshClaim's service.

// transferRequest is the body of an app's transfer request: with the
// callback when the worker has a public address.
func (w *Worker) transferRequest(tenant, app string) vercel.TransferRequest {
	c := w.cfg.Apps
	if c.CallbackURL == "" || c.CallbackSecret == "" {
		return vercel.TransferRequest{}
	}
	return vercel.TransferRequest{
		CallbackURL:    strings.TrimRight(c.CallbackURL, "/") + ClaimCallbackPath(tenant, app),
		CallbackSecret: w.callbackSecret(tenant, app),
	}
}

// ClaimCallbackPath is the path of an app's claim callback on the
// worker's HTTP server.
func ClaimCallbackPath(tenant, app string) string {
	return "/claims/" + url.PathEscape(tenant) + "/" + url.PathEscape(app)
}

// callbackSecret is the app's callback secret, derived from the worker's
// key: nothing is stored, and it opens this app's callback only.
func (w *Worker) callbackSecret(tenant, app string) string {
	mac := hmac.New(sha256.New, []byte(w.cfg.Apps.CallbackSecret))
	mac.Write([]byte("deployq/claim/v1/" + jobs.AppKey(tenant, app)))
	return hex.EncodeToString(mac.Sum(nil))
}

// claimCallback is the part of Vercel's transfer callback the worker
// reads. Vercel does not document the payload; the project id and the
// resources' outcome are read when present.
type claimCallback struct {
	ProjectID              string            `json:"projectId"`
	TransferredStoreIDs    []string          `json:"transferredStoreIds"`
	ResourceTransferErrors []json.RawMessage `json:"resourceTransferErrors"`
}

// maxCallbackBody bounds a callback's body.
const maxCallbackBody = 64 << 10

// ClaimHandler serves the claim callbacks, POST /claims/{tenant}/{app}:
// the body's HMAC-SHA256 under the app's secret must be in the
// X-Vercel-Signature header (hex), else 401 and nothing changes. A good
// one marks the app claimed, publishes its claimed event (once, however
// often Vercel calls), and answers 204 within a few milliseconds.
func (w *Worker) ClaimHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /claims/{tenant}/{app}", w.serveClaim)
	return mux
}

func (w *Worker) serveClaim(rw http.ResponseWriter, r *http.Request) {
	tenant, app := r.PathValue("tenant"), r.PathValue("app")
	if w.cfg.Apps.CallbackSecret == "" || !jobs.ValidAppKey(tenant, app) {
		http.NotFound(rw, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCallbackBody+1))
	if err != nil || len(body) > maxCallbackBody {
		http.Error(rw, "body unreadable or too large", http.StatusBadRequest)
		return
	}
	sig, err := hex.DecodeString(r.Header.Get("X-Vercel-Signature"))
	mac := hmac.New(sha256.New, []byte(w.callbackSecret(tenant, app)))
	mac.Write(body)
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		w.log.Warn("claim callback with a bad signature refused", "tenant", tenant, "app", app, "remote", r.RemoteAddr)
		http.Error(rw, "bad signature", http.StatusUnauthorized)
		return
	}
	var cb claimCallback
	if err := json.Unmarshal(body, &cb); err != nil {
		http.Error(rw, "body is not JSON", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), natsOpTimeout)
	defer cancel()
	a, err := jobs.ReadApp(ctx, w.assets.Apps, jobs.AppKey(tenant, app))
	switch {
	case err != nil:
		http.Error(rw, "app record unavailable", http.StatusServiceUnavailable)
		return
	case a == nil:
		http.NotFound(rw, r)
		return
	case cb.ProjectID != "" && a.ProjectID != "" && cb.ProjectID != a.ProjectID:
		http.Error(rw, "not this app's project", http.StatusConflict)
		return
	}
	db := ""
	switch {
	case len(cb.ResourceTransferErrors) > 0:
		db = jobs.DatabaseStayed
	case a.StoreID != "" && slices.Contains(cb.TransferredStoreIDs, a.StoreID):
		db = jobs.DatabaseMoved
	}
	if err := w.markClaimed(ctx, tenant, app, jobs.ClaimedViaCallback, db); err != nil {
		http.Error(rw, "claim not recorded; call again", http.StatusServiceUnavailable)
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}

// markClaimed records an app's claim and publishes its claimed event.
// An app claimed already (by a callback and a check both, or a callback
// sent twice) publishes nothing more.
func (w *Worker) markClaimed(ctx context.Context, tenant, app, via, database string) error {
	key := jobs.AppKey(tenant, app)
	changed := false
	a, err := jobs.UpdateApp(ctx, w.assets.Apps, key, func(a *jobs.App) (*jobs.App, error) {
		if changed = jobs.MarkClaimed(a, via, database, w.now()); !changed {
			return nil, nil
		}
		return a, nil
	})
	if err != nil {
		return err
	}
	if changed {
		w.m.AppClaimed(via)
		w.log.Info("app claimed by its user", "tenant", tenant, "app", app, "via", via, "database", database)
	}
	if a != nil && a.State == jobs.AppClaimed && !a.Announced {
		return w.announce(ctx, a, jobs.TypeClaimed)
	}
	return nil
}

// announce publishes an app's claimed or expired event and records that
// it did; the event's id makes a second publication after a crash a
// duplicate the stream drops.
func (w *Worker) announce(ctx context.Context, a *jobs.App, typ jobs.EventType) error {
	at := a.ClaimedAt
	if typ == jobs.TypeExpired {
		at = a.ExpiredAt
	}
	if err := w.publishEvent(ctx, a.Event(typ, at)); err != nil {
		return err
	}
	_, err := jobs.UpdateApp(ctx, w.assets.Apps, jobs.AppKey(a.Tenant, a.ID), func(x *jobs.App) (*jobs.App, error) {
		if x == nil || x.Announced || x.State != a.State {
			return nil, nil
		}
		x.Announced = true
		return x, nil
	})
	return err
}

// subscribeClaims serves claim refreshes (jobs.Client.RefreshClaim) in
// the workers' queue group: one worker answers each.
func (w *Worker) subscribeClaims(ctx context.Context) (*nats.Subscription, error) {
	return w.js.Conn().QueueSubscribe(jobs.AllClaims, jobs.ClaimQueue, func(m *nats.Msg) {
		go w.refreshClaim(ctx, m) // API calls: off the subscription's goroutine
	})
}

// refreshClaimTimeout bounds one refresh, budget wait included.
const refreshClaimTimeout = 25 * time.Second

func (w *Worker) refreshClaim(ctx context.Context, m *nats.Msg) {
	ctx, cancel := context.WithTimeout(ctx, refreshClaimTimeout)
	defer cancel()
	reply := func(ans jobs.ClaimAnswer) {
		data, _ := json.Marshal(ans)
		_ = m.Respond(data)
	}
	refuse := func(code, msg string) {
		reply(jobs.ClaimAnswer{Error: &jobs.EventError{Code: code, Message: msg}})
	}
	tenant, app, ok := claimOrigin(m.Subject)
	var ask jobs.ClaimAsk
	if !ok || json.Unmarshal(m.Data, &ask) != nil {
		refuse(jobs.CodeInvalidRequest, "a claim refresh names a tenant and an app, with a JSON body")
		return
	}
	key := jobs.AppKey(tenant, app)
	a, err := jobs.ReadApp(ctx, w.assets.Apps, key)
	switch {
	case err != nil:
		refuse(jobs.CodeClaimFailed, "the app's record is unavailable; try again")
		return
	case a == nil:
		refuse(jobs.CodeAppUnknown, "the tenant has no app "+app)
		return
	case a.State == jobs.AppClaimed:
		refuse(jobs.CodeAppClaimed, jobs.ErrAppClaimed.Error())
		return
	case a.State == jobs.AppExpiring || a.State == jobs.AppExpired:
		refuse(jobs.CodeAppExpired, jobs.ErrAppExpired.Error())
		return
	case a.State != jobs.AppLive:
		refuse(jobs.CodeAppNotLive, "the app has no live version yet ("+string(a.State)+")")
		return
	}
	now := w.now()
	if a.ClaimValid(now) && !ask.Fresh {
		reply(jobs.ClaimAnswer{Code: a.Claim.Code, ClaimURL: vercel.ClaimURLAt(w.cfg.ClaimPage, a.Claim.Code, ask.ReturnURL), ExpiresAt: a.Claim.ExpiresAt})
		return
	}
	// The user is waiting on the page: the call goes in the tenant's
	// interactive turn.
	ctx = fair.WithShare(ctx, fair.Share{Tenant: tenant, Weight: w.cfg.TenantWeights[tenant], Class: fair.Interactive})
	tc, _, err := w.pipeline.api.CreateTransferRequest(ctx, a.ProjectID, w.transferRequest(tenant, app))
	if err != nil {
		var apiErr *vercel.APIError
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
			// The project left the team: claimed without a word yet.
			if merr := w.markClaimed(ctx, tenant, app, jobs.ClaimedViaCheck, ""); merr == nil {
				refuse(jobs.CodeAppClaimed, jobs.ErrAppClaimed.Error())
				return
			}
		}
		refuse(jobs.CodeClaimFailed, "Vercel did not issue a claim code: "+err.Error())
		return
	}
	w.m.UpkeepCall("claim_code")
	claim := &jobs.AppClaim{Code: tc.Code, IssuedAt: now, ExpiresAt: now.Add(jobs.ClaimCodeLife)}
	if _, err := jobs.UpdateApp(ctx, w.assets.Apps, key, func(x *jobs.App) (*jobs.App, error) {
		if x == nil || x.State != jobs.AppLive {
			return nil, nil
		}
		x.Claim, x.UpdatedAt = claim, now
		x.Calls.Claims++
		return x, nil
	}); err != nil {
		w.log.Warn("fresh claim code not recorded in the app", "tenant", tenant, "app", app, "err", err)
	}
	reply(jobs.ClaimAnswer{Code: tc.Code, ClaimURL: vercel.ClaimURLAt(w.cfg.ClaimPage, tc.Code, ask.ReturnURL), ExpiresAt: claim.ExpiresAt, Fresh: true})
}

// claimOrigin reads the tenant and app of a claim refresh's subject.
func claimOrigin(subject string) (tenant, app string, ok bool) {
	rest, found := strings.CutPrefix(subject, strings.TrimSuffix(jobs.AllClaims, "*.*"))
	if !found {
		return "", "", false
	}
	tenant, app, ok = strings.Cut(rest, ".")
	return tenant, app, ok && jobs.ValidAppKey(tenant, app)
}
