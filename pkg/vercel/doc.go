// Package vercel is a client for the part of the Vercel REST API that the
// deployq pipeline uses: create a project, provision and connect a Prisma
// Postgres store through the integration, upload the source, create the
// deployment and poll it or follow its build events, and ask for the
// transfer code behind the claim URL.
//
// # How the pieces fit
//
// New builds a Client from validated options (options.go): base URL, token,
// team, HTTP client, per-request timeout, the projects API version and the
// connect route form, and two hooks. Every call goes through one path
// (client.go): the Limiter hook waits for budget, one HTTP attempt is made
// under the per-request timeout, the RequestObserver hook records it for
// metrics, the Limiter hears what the answer said, and a non-2xx answer is
// turned into a typed error (errors.go) with the rate-limit information of
// the headers and body (ratelimit.go). teamId is added to the query in that
// one place, and path segments are escaped where each route is built
// (projects.go, integrations.go, files.go, deployments.go, events.go).
//
// One call streams: FollowDeploymentEvents reads a deployment's build
// events as they happen (events.go). It takes the same path up to the
// answer's headers (budget, request timeout, observer, typed errors for a
// non-2xx answer); then the body is read event by event, each silence
// bounded by the stream idle timeout rather than the request timeout, for
// as long as the build lasts (stream.go).
//
// The client does not retry and does not sleep: whether and when to try
// again is the caller's policy, informed by Classify (classify.go), which
// sorts any error into Transient, Permanent or Fatal with a short reason for
// logs and metric labels, and the wait the API asked for. The one
// exception is CreateDeploymentUploading, whose upload-and-create-again is
// the API's protocol for missing files rather than a retry.
//
// # Errors
//
// A non-2xx answer is an *APIError, or one of the errors that embed it:
// *RateLimitError (429), *PlanLimitError (402 with a plan cap),
// *MissingFilesError (missing_files). errors.As finds the *APIError inside
// each of them. No answer at all is a *NetworkError; a 2xx answer that
// cannot be read is a *DecodeError; a call refused before sending is an
// *InvalidArgumentError. No error, and no printed form of the Client,
// contains the token or the request's query.
//
// Every call returns a *Response when an HTTP answer arrived, errors
// included, so the caller can log the request id and read the rate-limit
// headers.
//
// Endpoint names a route template; it keys the budget's buckets and labels
// metrics, never an id.
package vercel
