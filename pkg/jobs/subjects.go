package jobs

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
	// BucketSources is the object store of source tarballs, named by SHA-1.
	BucketSources = "DEPLOY_SOURCES"
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

// RequestSubject is where a tenant's deploy requests are published.
func RequestSubject(tenant string) string { return requestsPrefix + tenant }

// EventSubject is where one request's events are published.
func EventSubject(tenant, id string) string { return eventsPrefix + tenant + "." + id }

// TenantEvents matches every event of one tenant.
func TenantEvents(tenant string) string { return eventsPrefix + tenant + ".>" }

// AllEvents matches every event.
const AllEvents = eventsPrefix + ">"

// DLQSubject is where a tenant's dead letters are published.
func DLQSubject(tenant string) string { return dlqPrefix + tenant }

func jobKey(tenant, id string) string { return tenant + "." + id }
