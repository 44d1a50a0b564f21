package jobs

import "time"

// Source tarballs live in the DEPLOY_SOURCES stream (SourceStore), one
// copy per tenant and SHA-1, shared by every request of the tenant that
// deploys the same bytes. Each request that needs one holds a
// reference key <sha1>.<tenant>.<id> in the refs bucket from submit until
// its job ends. A janitor deletes a tarball once nobody references it and
// it is older than the grace period.
//
// Why the grace period makes deletion safe without locks: a producer puts
// its reference *before* checking whether the tarball exists, and skips
// the upload only if the tarball was written less than grace/2 ago. The
// janitor deletes only tarballs written more than grace ago, and lists
// references *after* checking the age. So if a producer skipped an upload,
// its reference was written before the janitor could list — and the
// janitor sees it and keeps the tarball. Ages are the stream's own
// timestamps, so the producers' clocks only matter for their half of the
// rule (grace absorbs their skew).

// DefaultSourceGrace is the grace period producers and the janitor agree
// on unless configured: ClientConfig.SourceGrace and the workers' janitor
// must use the same.
const DefaultSourceGrace = 10 * time.Minute
