// Package console serves deployq's operations console: one page, with
// no build step and nothing fetched from elsewhere at run time (its HTML,
// CSS and JavaScript are embedded), over a small JSON API of the queue
// (jobs.Client's Overview and Jobs) and a live stream of events
// (server-sent events from DEPLOY_EVENTS). It is read-only unless a
// token is configured: then cancels are accepted from a caller that
// gives it (Authorization: Bearer <token>), compared in constant time,
// and never shown. cmd/worker mounts it at / on HTTP_ADDR.
package console
