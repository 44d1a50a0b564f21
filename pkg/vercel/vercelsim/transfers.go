package vercelsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// Claims and domains: what happens to a project after its first deploy.
// A transfer request gives a code; accepting it (what Vercel's claim page
// does for the user who opens the claim link) moves the project, and its
// databases unless their move fails, to the accepting account, where the
// old team's token no longer finds them, and calls the request's callback.
// Projects get domains of their own, to which production deployments are
// aliased.

type transferRequestBody struct {
	CallbackURL    string `json:"callbackUrl"`
	CallbackSecret string `json:"callbackSecret"`
}

// transferCodeLifetime is how long Vercel keeps a transfer code valid.
const transferCodeLifetime = 24 * time.Hour

func (s *Server) createTransferRequest(c *call) reply {
	var req transferRequestBody
	if rep := decodeBody(c.r, nil, &req); rep != nil {
		return *rep
	}
	if req.CallbackURL != "" {
		if u, err := url.Parse(req.CallbackURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return badRequest("Invalid request: `callbackUrl` must be an absolute http(s) URL.")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.lookupProject(s.account(c), c.r.PathValue("idOrName"))
	if p == nil {
		return notFound("Project not found")
	}
	now := s.now()
	t := &transfer{
		seq: s.st.next(), code: s.uuidLocked(), projectID: p.id,
		callbackURL: req.CallbackURL, callbackSecret: req.CallbackSecret,
		createdAt: now, expiresAt: now.Add(transferCodeLifetime),
	}
	s.st.transfers[t.code] = t
	return jsonReply(http.StatusOK, transferCodeBody{Code: t.code})
}

type transferCodeBody struct {
	Code string `json:"code"`
}

type acceptTransferBody struct {
	NewProjectName   string          `json:"newProjectName"`
	PaidFeatures     json.RawMessage `json:"paidFeatures"`
	AcceptedPolicies json.RawMessage `json:"acceptedPolicies"`
}

// acceptedTransferBody is the 202 answer of an accepted transfer.
type acceptedTransferBody struct {
	PartnerCalls           []partnerCallBody       `json:"partnerCalls"`
	ResourceTransferErrors []resourceTransferError `json:"resourceTransferErrors"`
	TransferredStoreIDs    []string                `json:"transferredStoreIds"`
}

type partnerCallBody struct {
	InstallationID string            `json:"installationId"`
	ResourceIDs    []string          `json:"resourceIds"`
	Result         partnerCallResult `json:"result"`
}

type partnerCallResult struct {
	Status string    `json:"status"` // fulfilled or errored
	Code   string    `json:"code,omitempty"`
	Error  *apiError `json:"error,omitempty"`
}

type resourceTransferError struct {
	ResourceID string   `json:"resourceId"`
	Error      apiError `json:"error"`
}

// claimCallbackBody is what the simulator posts to a transfer's callback
// URL. Vercel does not document the payload; this one says what the
// accept answered.
type claimCallbackBody struct {
	Code                   string                  `json:"code"`
	ProjectID              string                  `json:"projectId"`
	TeamID                 string                  `json:"teamId"`
	AcceptedAt             int64                   `json:"acceptedAt"`
	TransferredStoreIDs    []string                `json:"transferredStoreIds"`
	ResourceTransferErrors []resourceTransferError `json:"resourceTransferErrors"`
}

// acceptTransfer is PUT /projects/transfer-request/{code}: the project
// moves to the calling account (Config.ClaimTeam when the call names no
// team), its connected databases with it unless Quirks.StoreTransferFails;
// every code of the project stops working; the callback is called.
func (s *Server) acceptTransfer(c *call) reply {
	var req acceptTransferBody
	if rep := decodeBody(c.r, nil, &req); rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	t := s.st.transfers[c.r.PathValue("code")]
	if t == nil || !now.Before(t.expiresAt) {
		// Vercel does not document the answer to an expired code; it
		// is gone either way.
		return notFound("Transfer request not found or expired")
	}
	p := s.st.projects[t.projectID]
	if p == nil {
		return notFound("Project not found")
	}
	to := c.team
	if to == "" {
		to = s.cfg.ClaimTeam
	}
	if to == p.accountID {
		return badRequest("The project already belongs to this team.")
	}
	name := p.name
	if req.NewProjectName != "" {
		name = req.NewProjectName
	}
	if s.st.projectsByName[nameKey(to, name)] != nil {
		return conflict(fmt.Sprintf("Project %q already exists in the destination team, please choose a new name.", name))
	}
	delete(s.st.projectsByName, nameKey(p.accountID, p.name))
	p.accountID, p.name, p.updatedAt = to, name, now
	s.st.projectsByName[nameKey(to, name)] = p
	for _, d := range p.deployments {
		d.team = to
	}
	for code, x := range s.st.transfers {
		if x.projectID == p.id {
			delete(s.st.transfers, code)
		}
	}
	ans := acceptedTransferBody{PartnerCalls: []partnerCallBody{}, ResourceTransferErrors: []resourceTransferError{}, TransferredStoreIDs: []string{}}
	byConfig := map[string][]string{}
	for k := range s.st.connections {
		if k.projectID != p.id {
			continue
		}
		st := s.st.stores[k.storeID]
		if st == nil {
			continue
		}
		byConfig[st.configID] = append(byConfig[st.configID], st.id)
		if s.cfg.Quirks.StoreTransferFails {
			ans.ResourceTransferErrors = append(ans.ResourceTransferErrors, resourceTransferError{
				ResourceID: st.id, Error: apiError{Code: "transfer_failed", Message: "The integration could not move the resource."}})
			continue
		}
		st.owner = to
		ans.TransferredStoreIDs = append(ans.TransferredStoreIDs, st.id)
	}
	for _, cfg := range slices.Sorted(maps.Keys(byConfig)) {
		res := partnerCallResult{Status: "fulfilled"}
		if s.cfg.Quirks.StoreTransferFails {
			res = partnerCallResult{Status: "errored", Error: &apiError{Code: "transfer_failed", Message: "The integration could not move the resource."}}
		}
		ids := byConfig[cfg]
		slices.Sort(ids)
		ans.PartnerCalls = append(ans.PartnerCalls, partnerCallBody{InstallationID: cfg, ResourceIDs: ids, Result: res})
	}
	slices.Sort(ans.TransferredStoreIDs)
	s.stats.transfersAccepted++
	if t.callbackURL != "" {
		body, _ := json.Marshal(claimCallbackBody{
			Code: t.code, ProjectID: p.id, TeamID: to, AcceptedAt: now.UnixMilli(),
			TransferredStoreIDs: ans.TransferredStoreIDs, ResourceTransferErrors: ans.ResourceTransferErrors,
		})
		go s.callBack(t.callbackURL, t.callbackSecret, body)
	}
	return jsonReply(http.StatusAccepted, ans)
}

// CallbackSignatureHeader carries a transfer callback's signature: the
// hex HMAC-SHA256 of the body under the transfer's callbackSecret.
const CallbackSignatureHeader = "X-Vercel-Signature"

// callBack posts a transfer's callback, once, to a loopback address only:
// the simulator never sends traffic anywhere else. The outcome is counted
// in Stats.
func (s *Server) callBack(target, secret string, body []byte) {
	u, err := url.Parse(target)
	if err != nil || !loopbackHost(u.Hostname()) {
		s.countCallback(false)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		select {
		case <-s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		s.countCallback(false)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req.Header.Set(CallbackSignatureHeader, hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := s.cfg.CallbackClient.Do(req)
	if err != nil {
		s.countCallback(false)
		return
	}
	_ = resp.Body.Close()
	s.countCallback(resp.StatusCode/100 == 2)
}

func (s *Server) countCallback(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.stats.callbacksDelivered++
	} else {
		s.stats.callbacksFailed++
	}
}

// loopbackHost reports whether host names this machine's loopback.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ---- caps

// projectCapLocked answers a project creation past Config.MaxProjects as
// Vercel does past Hobby's 200 projects.
func (s *Server) projectCapLocked(c *call) (reply, bool) {
	if s.cfg.MaxProjects <= 0 {
		return reply{}, false
	}
	account, n := s.account(c), 0
	for _, p := range s.st.projects {
		if p.accountID == account {
			n++
		}
	}
	if n < s.cfg.MaxProjects {
		return reply{}, false
	}
	return errorReply(http.StatusBadRequest, apiError{Code: "too_many_projects",
		Message: fmt.Sprintf("You have reached the limit of %d projects for your plan. Delete projects or upgrade. Learn more: https://vercel.com/docs/limits/overview#general-limits", s.cfg.MaxProjects)}), true
}

// storeCapLocked answers a database creation past Config.MaxStores. The
// real answer of a full Prisma workspace is not documented; this one is a
// 400 whose code and message say what is full.
func (s *Server) storeCapLocked(c *call) (reply, bool) {
	if s.cfg.MaxStores <= 0 {
		return reply{}, false
	}
	account, n := s.account(c), 0
	for _, st := range s.st.stores {
		if st.owner == account {
			n++
		}
	}
	if n < s.cfg.MaxStores {
		return reply{}, false
	}
	return errorReply(http.StatusBadRequest, apiError{Code: "too_many_stores",
		Message: fmt.Sprintf("You have reached the limit of %d databases for your plan.", s.cfg.MaxStores)}), true
}

// ---- domains

type addDomainBody struct {
	Name      string  `json:"name"`
	GitBranch *string `json:"gitBranch"`
	Redirect  *string `json:"redirect"`
}

type projectDomainBody struct {
	Name                string  `json:"name"`
	ApexName            string  `json:"apexName"`
	ProjectID           string  `json:"projectId"`
	Redirect            *string `json:"redirect"`
	RedirectStatusCode  *int    `json:"redirectStatusCode"`
	GitBranch           *string `json:"gitBranch"`
	CustomEnvironmentID *string `json:"customEnvironmentId"`
	UpdatedAt           int64   `json:"updatedAt"`
	CreatedAt           int64   `json:"createdAt"`
	Verified            bool    `json:"verified"`
}

// validDomain accepts lowercase DNS names of two labels or more.
func validDomain(d string) bool {
	if len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
				return false
			}
		}
	}
	return true
}

func apexOf(d string) string {
	labels := strings.Split(d, ".")
	if len(labels) <= 2 {
		return d
	}
	return strings.Join(labels[len(labels)-2:], ".")
}

// addDomain is POST /v10/projects/{idOrName}/domains. A domain on another
// project answers 409 domain_already_in_use; one this project has already
// answers 409 domain_already_exists (Vercel documents 409 for both; a
// client asks GET …/domains/{domain} whose it is).
func (s *Server) addDomain(c *call) reply {
	var req addDomainBody
	if rep := decodeBody(c.r, nil, &req); rep != nil {
		return *rep
	}
	if !validDomain(req.Name) {
		return badRequest("Invalid request: `name` must be a valid domain name.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.lookupProject(s.account(c), c.r.PathValue("idOrName"))
	if p == nil {
		return notFound("Project not found")
	}
	switch owner := s.st.domains[req.Name]; {
	case owner == p:
		return errorReply(http.StatusConflict, apiError{Code: "domain_already_exists", Message: fmt.Sprintf("The domain %s is already assigned to this project.", req.Name)})
	case owner != nil:
		return errorReply(http.StatusConflict, apiError{Code: "domain_already_in_use", Message: fmt.Sprintf("The domain %s is already in use by another project.", req.Name)})
	}
	now := s.now()
	s.st.domains[req.Name] = p
	p.domains = append(p.domains, req.Name)
	p.updatedAt = now
	return jsonReply(http.StatusOK, s.domainBodyLocked(p, req.Name))
}

// getDomain is GET /v9/projects/{idOrName}/domains/{domain}.
func (s *Server) getDomain(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.lookupProject(s.account(c), c.r.PathValue("idOrName"))
	if p == nil {
		return notFound("Project not found")
	}
	d := c.r.PathValue("domain")
	if s.st.domains[d] != p {
		return notFound("Domain not found on this project")
	}
	return jsonReply(http.StatusOK, s.domainBodyLocked(p, d))
}

func (s *Server) domainBodyLocked(p *project, d string) projectDomainBody {
	at := p.updatedAt.UnixMilli()
	return projectDomainBody{Name: d, ApexName: apexOf(d), ProjectID: p.id, UpdatedAt: at, CreatedAt: at, Verified: true}
}

// projectDomainsLocked is the domains of a project by id.
func (s *Server) projectDomainsLocked(id string) []string {
	if p := s.st.projects[id]; p != nil {
		return p.domains
	}
	return nil
}

// ---- the claim page

// ClaimPagePath is where the simulator serves its stand-in for Vercel's
// claim page: a claim URL a worker hands out in simulation points here,
// so nobody takes it for a real one, and opening it plays the user who
// claims (the transfer is accepted into Config.ClaimTeam).
const ClaimPagePath = "/claim-deployment"

// claimPage answers GET (the page) and POST (the user accepts) on
// ClaimPagePath. It needs no token: it is the user's browser, not the
// API. Everything it shows is inline; nothing is fetched from elsewhere.
func (s *Server) claimPage(w http.ResponseWriter, r *http.Request) {
	code := r.FormValue("code")
	back := r.FormValue("returnUrl")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	status, msg := http.StatusOK, ""
	if r.Method == http.MethodPost {
		s.mu.Lock()
		t := s.st.transfers[code]
		s.mu.Unlock()
		if t == nil {
			status, msg = http.StatusNotFound, "This claim code is unknown or expired: ask the platform for a fresh link."
		} else {
			req := r.Clone(r.Context())
			req.SetPathValue("code", code)
			req.Body = http.NoBody
			rep := s.acceptTransfer(&call{r: req, team: s.cfg.ClaimTeam})
			if rep.status == http.StatusAccepted {
				msg = "Claimed: the project moved to the simulated team " + s.cfg.ClaimTeam + "."
			} else {
				status, msg = rep.status, "The claim failed (status "+fmt.Sprint(rep.status)+")."
			}
		}
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Simulated claim — deployq</title><style>body{font:16px system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}
.sim{background:#fff3cd;border:1px solid #e0c060;padding:.75rem;border-radius:6px}button{font-size:1rem;padding:.5rem 1rem}</style></head>
<body><p class="sim"><strong>Simulated.</strong> This page is served by deployq's Vercel simulator (<code>--simulate</code>), not by Vercel: no real project exists. In production the claim URL opens Vercel's claim page at %s.</p>
<h1>Claim this project</h1><p>Code <code>%s</code></p>%s
<form method="post" action="%s"><input type="hidden" name="code" value="%s"><input type="hidden" name="returnUrl" value="%s"><button type="submit">Claim (simulated)</button></form>%s</body></html>`,
		html.EscapeString(vercel.ClaimURLBase), html.EscapeString(code), paragraph(msg), ClaimPagePath,
		html.EscapeString(code), html.EscapeString(back), returnLink(back))
}

func paragraph(msg string) string {
	if msg == "" {
		return ""
	}
	return "<p><strong>" + html.EscapeString(msg) + "</strong></p>"
}

func returnLink(back string) string {
	u, err := url.Parse(back)
	if back == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	return `<p><a href="` + html.EscapeString(back) + `">Back to the platform</a></p>`
}
