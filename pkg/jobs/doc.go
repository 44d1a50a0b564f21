// Package jobs is deployq's queue: the deploy request and its events, the
// JetStream assets that carry them, the workers that run each request
// through the Vercel + Prisma pipeline, and the producer client.
//
// Producers use Client. Submit publishes one request; SubmitBatch
// publishes many requests of one source tarball with their round trips
// pipelined, for a platform that deploys one template many times at once.
// Both store the tarball once per tenant and content (SourceStore), hold
// a source reference for each request until its job ends, deduplicate on
// the request's tenant and id (its own subject, then the job's
// checkpoint), and are followed with Watch and Status; Cancel and Replay
// steer a job after it was submitted. A client for one tenant's NATS user
// (ClientConfig.Tenant) does all of this with that user's grants alone.
//
// Workers call Setup (streams, buckets and the shared consumer, all named
// in subjects.go), then run a Worker over a Pipeline: the worker fetches
// requests, rejects what its subject cannot vouch for, checks the
// source tarball, claims each one's checkpoint, runs the steps, publishes
// events and settles the message; Pipeline.Deploy runs the same steps
// without the queue. docs/ARCHITECTURE.md describes a job's life in full.
package jobs
