package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Names of every JetStream asset deployq uses, in one place. Producers,
// workers, dashboards and NATS permissions (deploy/nats) all depend on
// them; changing one is a breaking change.
const (
	// StreamRequests holds deploy requests until a worker acks them
	// (work-queue retention).
	StreamRequests = "DEPLOY_REQUESTS"
	// StreamEvents holds progress and terminal events (limits retention).
	StreamEvents = "DEPLOY_EVENTS"
	// StreamDLQ holds dead letters for browsing and replay.
	StreamDLQ = "DEPLOY_DLQ"
	// ConsumerWorkers is the durable pull consumer of requests published on
	// deploy.requests.<tenant>, the form of earlier versions, which
	// workers reject with a reason. Every tenant's requests have a
	// consumer of their own (TenantConsumer), shared by every worker.
	ConsumerWorkers = "deploy-workers"
	// BucketJobs is the KV bucket of job checkpoints, keyed <tenant>.<id>.
	BucketJobs = "DEPLOY_JOBS"
	// BucketSources is what a request's source.bucket names: the
	// DEPLOY_SOURCES stream of source tarballs (SourceStore).
	BucketSources = "DEPLOY_SOURCES"
	// StreamSources holds source tarballs, a subject tree per tenant and
	// SHA-1 (SourceStore).
	StreamSources = BucketSources
	// BucketSourceRefs is the KV bucket recording which requests still need
	// a tarball, keyed <sha1>.<tenant>.<id>.
	BucketSourceRefs = "DEPLOY_SOURCE_REFS"
	// BucketApps holds each app's record (App), keyed <tenant>.<app>.
	BucketApps = "DEPLOY_APPS"
	// BucketUploads remembers which tarballs a Vercel team already has,
	// keyed <team>.<sha1>, so a tarball is uploaded once per team.
	BucketUploads = "DEPLOY_UPLOADS"
	// BucketBuildTimes holds each Vercel team's learned build time (mean,
	// mean deviation, samples), keyed by team, so that a worker starting
	// fresh schedules its status polls like one that has seen builds.
	BucketBuildTimes = "DEPLOY_BUILDTIMES"

	requestsPrefix = "deploy.requests."
	eventsPrefix   = "deploy.events."
	dlqPrefix      = "deploy.dlq."
)

// RequestSubject is where one request is published:
// deploy.requests.<tenant>.<id>. The subject is the request's identity:
// NATS permissions confine a tenant's publishes to its own
// deploy.requests.<tenant>.*, so an id is scoped by its tenant wherever
// it is used, and Submit deduplicates by the subject (a publish that
// expects no message on it yet) instead of a Nats-Msg-Id, whose
// namespace every tenant shares. The worker trusts the subject, never
// the body, for whose request a message is.
func RequestSubject(tenant, id string) string { return requestsPrefix + tenant + "." + id }

// BatchRequestSubject is where a batch request is published:
// deploy.requests.<tenant>.batch.<id>. A tenant's batch requests wait in
// a lane of their own (BatchConsumer), so that its interactive requests
// need not queue behind them; the id is still the last token, and still
// scoped by the tenant.
func BatchRequestSubject(tenant, id string) string {
	return requestsPrefix + tenant + batchInfix + id
}

// SubjectFor is the subject req is published on: RequestSubject, or
// BatchRequestSubject for a batch request.
func SubjectFor(req *Request) string {
	if req.Priority.Batch() {
		return BatchRequestSubject(req.Tenant, req.ID)
	}
	return RequestSubject(req.Tenant, req.ID)
}

// batchInfix sits between the tenant and id tokens of a batch request's
// subject.
const batchInfix = ".batch."

// TenantRequests matches every request of one tenant; it is what a
// tenant's NATS user may publish to, and what its consumer takes.
func TenantRequests(tenant string) string { return requestsPrefix + tenant + ".*" }

// TenantBatchRequests matches every batch request of one tenant; its
// NATS user may publish to it too, and its batch consumer takes it.
func TenantBatchRequests(tenant string) string { return requestsPrefix + tenant + batchInfix + "*" }

// AllRequests matches every request subject the requests stream takes:
// deploy.requests.<tenant>.<id>, deploy.requests.<tenant>.batch.<id>, and
// deploy.requests.<tenant> (rejected).
const AllRequests = requestsPrefix + ">"

// Queued is where the requests stream announces each request it stored:
// the message's headers (Nats-Subject names the request's subject), no
// body, republished by the server once the request is stored, and on
// core NATS only. Workers listen to learn which tenants have work
// waiting; an announcement lost costs a delay, not a request.
const Queued = "deploy.queued.>"

// LaneHints is where a worker that hands a request back (so that another
// delivery takes it) says so, the request's subject in the body: the
// request is waiting again, and nothing else will tell the other
// workers. Core NATS, a hint only (see Queued).
const LaneHints = "deploy.lanes"

// TenantConsumer names the durable consumer of the requests published
// under the tenant token of a request subject (TenantRequests(token)).
// Workers create it when they first see such a request and the server
// deletes it once idle (SetupConfig.LaneIdle): one consumer per tenant
// with work is what lets workers choose whose request to take next. A
// token that is no valid tenant name (its requests are rejected) gets a
// name derived from its hash, since any token may appear in a subject.
func TenantConsumer(token string) string {
	if tenantPattern.MatchString(token) {
		return tenantConsumerPrefix + token
	}
	sum := sha256.Sum256([]byte(token))
	return oddConsumerPrefix + hex.EncodeToString(sum[:8])
}

// BatchConsumer names the durable consumer of the batch requests
// published under a tenant token (TenantBatchRequests(token)), made and
// deleted like TenantConsumer's.
func BatchConsumer(token string) string {
	if tenantPattern.MatchString(token) {
		return batchConsumerPrefix + token
	}
	sum := sha256.Sum256([]byte(token))
	return oddBatchConsumerPrefix + hex.EncodeToString(sum[:8])
}

// Prefixes of the tenants' consumer names: a valid tenant's, and an
// invalid token's, for its interactive and its batch requests.
const (
	tenantConsumerPrefix   = "deploy-t-"
	oddConsumerPrefix      = "deploy-x-"
	batchConsumerPrefix    = "deploy-b-"
	oddBatchConsumerPrefix = "deploy-y-"
)

// IsTenantConsumer reports whether name is a consumer TenantConsumer or
// BatchConsumer names.
func IsTenantConsumer(name string) bool {
	for _, p := range []string{tenantConsumerPrefix, oddConsumerPrefix, batchConsumerPrefix, oddBatchConsumerPrefix} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// RequestLane is the tenant token of a request subject,
// deploy.requests.<token>.<id> or deploy.requests.<token>.batch.<id>,
// valid tenant name or not, and whether it is a batch request's subject;
// ok is false when subject has another form.
func RequestLane(subject string) (token string, batch, ok bool) {
	token, _, batch, ok = requestSubjectParts(subject)
	return token, batch, ok && token != ""
}

// RequestOrigin is whose request a message on subject is, as the subject
// proves: its tenant token, "" when that is not a valid tenant name, and
// its id token, "" when there is none or it is not a valid id. Workers
// take a request's identity from here, never from its body (see
// RequestSubject).
func RequestOrigin(subject string) (tenant, id string) {
	tenant, id, _, _ = requestSubjectParts(subject)
	if !tenantPattern.MatchString(tenant) {
		return "", ""
	}
	if !idPattern.MatchString(id) {
		id = ""
	}
	return tenant, id
}

// requestSubjectParts splits a request subject into the tenant and id
// tokens it names, and says whether it is a batch request's; ok is false
// when it is neither deploy.requests.<a>.<b> nor
// deploy.requests.<a>.batch.<b>.
func requestSubjectParts(subject string) (tenant, id string, batch, ok bool) {
	rest, found := strings.CutPrefix(subject, requestsPrefix)
	if !found {
		return "", "", false, false
	}
	tenant, id, found = strings.Cut(rest, ".")
	if !found {
		return tenant, "", false, false
	}
	if after, isBatch := strings.CutPrefix(id, batchInfix[1:]); isBatch {
		id, batch = after, true
	}
	if strings.Contains(id, ".") {
		return tenant, "", false, false
	}
	return tenant, id, batch, true
}

// EventSubject is where one request's events are published.
func EventSubject(tenant, id string) string { return eventsPrefix + tenant + "." + id }

// AllEvents matches every event.
const AllEvents = eventsPrefix + ">"

// DLQSubject is where a tenant's dead letters are published.
func DLQSubject(tenant string) string { return dlqPrefix + tenant }

func jobKey(tenant, id string) string { return tenant + "." + id }

// SourceRefKey is the key in BucketSourceRefs that holds r's source
// tarball for its job: <sha1>.<tenant>.<id>.
func SourceRefKey(r *Request) string { return r.Source.SHA1 + "." + r.Tenant + "." + r.ID }

// CancelSubject is where Client.Cancel announces a cancel to the worker
// running the job (a hint: the mark in the checkpoint is what counts).
func CancelSubject(tenant, id string) string { return cancelPrefix + tenant + "." + id }

// AllCancels matches every cancel notice.
const AllCancels = cancelPrefix + ">"

const cancelPrefix = "deploy.cancel."

// ClaimSubject is where a fresh claim URL for an app is asked of the
// workers (Client.RefreshClaim): a request-reply subject, answered by one
// worker of the fleet's queue group.
func ClaimSubject(tenant, app string) string { return claimPrefix + tenant + "." + app }

// AllClaims is what the workers subscribe to for claim refreshes.
const AllClaims = claimPrefix + "*.*"

// ClaimQueue is the workers' queue group on AllClaims.
const ClaimQueue = "deployq-workers"

const claimPrefix = "deploy.apps.claim."

// ValidAppKey reports whether tenant and app are a valid tenant name and
// app id, as a request would carry them.
func ValidAppKey(tenant, app string) bool {
	return tenantPattern.MatchString(tenant) && idPattern.MatchString(app)
}
