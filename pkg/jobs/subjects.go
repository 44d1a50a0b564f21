package jobs

import "strings"

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
	// ConsumerWorkers is the one durable pull consumer every worker shares.
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

// TenantRequests matches every request of one tenant; it is what a
// tenant's NATS user may publish to.
func TenantRequests(tenant string) string { return requestsPrefix + tenant + ".*" }

// RequestOrigin is whose request a message on subject is, as the subject
// proves: its tenant token, "" when that is not a valid tenant name, and
// its id token, "" when there is none or it is not a valid id. Workers
// take a request's identity from here, never from its body (see
// RequestSubject).
func RequestOrigin(subject string) (tenant, id string) {
	tenant, id, _ = requestSubjectParts(subject)
	if !tenantPattern.MatchString(tenant) {
		return "", ""
	}
	if !idPattern.MatchString(id) {
		id = ""
	}
	return tenant, id
}

// requestSubjectParts splits a request subject into the tenant and id
// tokens it names; ok is false when it is not deploy.requests.<a>.<b>.
func requestSubjectParts(subject string) (tenant, id string, ok bool) {
	rest, found := strings.CutPrefix(subject, requestsPrefix)
	if !found {
		return "", "", false
	}
	tenant, id, found = strings.Cut(rest, ".")
	if !found || strings.Contains(id, ".") {
		return tenant, "", false
	}
	return tenant, id, true
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
