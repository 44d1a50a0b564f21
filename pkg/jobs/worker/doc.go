// Package worker runs deploy requests through the Vercel + Prisma
// Postgres pipeline: it pulls them from the tenants' consumers in fair
// order, claims each job's checkpoint, runs the steps, publishes events
// and settles the message. Any number of workers, in one process or
// many, share the consumers; JetStream gives each request to one of them
// at a time, and the checkpoint's lease fences out a worker that lost it.
//
// # Running a worker
//
// A worker needs the assets jobs.Setup returned, a Pipeline (a Vercel
// client and the Prisma integration's settings, shared by all of the
// worker's jobs) and a Config; Run takes work until its context ends,
// then lets the jobs in flight finish within Config.ShutdownGrace and
// hands the rest back with their checkpoints. cmd/worker wires it up from
// environment variables.
//
// # Whose request goes next
//
// lanes.go: each tenant's requests have a consumer of their own (a lane),
// and its batch requests a second one; a worker with free slots takes
// requests from the lanes in the order internal/fair gives (each waiting
// tenant a share by weight, a lone tenant everything, batch one turn in
// five within a tenant), learning which lanes have requests from the
// stream's announcements and a periodic rescan (backlog.go). Nothing is
// fetched ahead of a free slot. The job's tenant, weight and priority
// also travel in its context to the API budget's waiting lines.
//
// # A job's life
//
// job.go reads top to bottom as one delivery's life: the message is
// decoded and checked against its subject (reject.go otherwise), admitted
// against its tenant's quota when it has one (quota.go: held or rejected
// past it), its checkpoint opened and claimed, its source tarball vetted
// (sourcecheck.go), its app taken (apps.go: a later version starts at the
// upload, in the app's project), then each step of the table in steps.go runs behind
// the fence; a failure is decided before its resources are cleaned up,
// and the terminal event is published before the message is settled
// (deadletter.go for failures). waitready.go waits for the build without
// spending API budget; cancel.go delivers cancels; maxdeliveries.go
// dead-letters a request that ran out of deliveries; janitor.go deletes
// source tarballs nobody needs; credentials.go pauses the worker while
// the API refuses its token.
//
// # Apps after their versions
//
// claims.go serves Vercel's claim callbacks (ClaimHandler) and claim
// refreshes; upkeep.go, run by one worker of the fleet at a time, checks
// claims, expires apps unclaimed past AppsConfig.TTL and counts the
// inventory against the plan's caps.
//
// # Where to change what
//
// A new step: a method of job in steps.go and a row in pipelineSteps (and
// its name in jobs.Steps). A new way for a job to end: a transition of
// jobs.Checkpoint and an EventType. Retry rules: stepFailed and retryWait
// in job.go. Whose request a free slot takes: lanes.go; what a tenant's
// quota does to it: quota.go. An app's states: jobs/apps.go; what a job
// does with its app: apps.go; the upkeep: upkeep.go. The stack a
// waiting job holds is guarded by
// TestWaitingJobStackStaysSmall.
package worker
