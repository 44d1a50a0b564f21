package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/vercel"
)

// Config is the worker's configuration, read by loadConfig from flags and
// the environment. Every field has a flag and an environment variable; a
// flag wins over its variable, and a variable over the default.
//
// Printing a Config (fmt, slog) never shows Token or the passwords in URLs.
type Config struct {
	// NATSURL lists the NATS servers to connect to, comma-separated
	// (NATS_URL, --nats-url). Defaults to empty: the worker runs an
	// embedded NATS server with JetStream instead.
	NATSURL string `redact:"urls"`
	// NATSCreds is the path of a NATS .creds file (NATS_CREDS,
	// --nats-creds). The file must exist. Defaults to none.
	NATSCreds string
	// NATSTLSCA is the path of a PEM file of CAs that sign the NATS
	// servers' certificates (NATS_TLS_CA, --nats-tls-ca). Defaults to the
	// system's roots.
	NATSTLSCA string
	// NATSTLSCert and NATSTLSKey are the paths of a PEM client certificate
	// and its key, for NATS servers that verify clients (NATS_TLS_CERT,
	// NATS_TLS_KEY; --nats-tls-cert, --nats-tls-key). Set both or neither.
	// Defaults to none.
	NATSTLSCert string
	NATSTLSKey  string

	// StreamReplicas is the replica count of every stream and bucket the
	// worker creates: 1 on one server, 3 in a cluster (STREAM_REPLICAS,
	// --stream-replicas). Defaults to 1.
	StreamReplicas int
	// MaxTenantConsumers caps the tenants' consumers of the requests
	// stream: tenants with requests within TenantConsumerIdle
	// (MAX_TENANT_CONSUMERS, --max-tenant-consumers). Defaults to 10000.
	MaxTenantConsumers int
	// TenantConsumerIdle is how long a tenant's consumer outlives its
	// last request (TENANT_CONSUMER_IDLE, --tenant-consumer-idle).
	// Defaults to 1h.
	TenantConsumerIdle time.Duration

	// EmbeddedAddr is the host:port the embedded NATS server listens on
	// when NATSURL is empty (EMBEDDED_NATS_ADDR, --embedded-nats-addr).
	// Defaults to 127.0.0.1:4222.
	EmbeddedAddr string
	// DataDir holds the embedded server's JetStream store (DATA_DIR,
	// --data-dir). Defaults to ./data.
	DataDir string

	// Concurrency is how many deploy jobs run at once, from 1 to 10000
	// (CONCURRENCY, --concurrency). Defaults to 16.
	Concurrency int
	// MaxAttempts is how many deliveries a request gets before it is
	// dead-lettered, from 1 to 100 (MAX_ATTEMPTS, --max-attempts).
	// Defaults to 5.
	MaxAttempts int
	// AckWait is how long a delivery may go unacknowledged before
	// JetStream redelivers it, at least 1s (ACK_WAIT, --ack-wait). The
	// worker extends it while a job runs. Defaults to 60s.
	AckWait time.Duration
	// ShutdownGrace is how long in-flight jobs may run on after SIGTERM
	// (SHUTDOWN_GRACE, --shutdown-grace). Defaults to 30s.
	ShutdownGrace time.Duration
	// KeepFailedResources leaves the project and store of a failed job in
	// place for inspection instead of deleting them
	// (KEEP_FAILED_RESOURCES, --keep-failed-resources). Defaults to false.
	KeepFailedResources bool
	// ProgressEvents publishes a step_completed event after each step;
	// off, each request gets its terminal event only (PROGRESS_EVENTS,
	// --progress-events). Defaults to true.
	ProgressEvents bool
	// HTTPAddr is the host:port serving /healthz, /readyz and /metrics
	// (HTTP_ADDR, --http-addr); "off", or an empty flag, disables it.
	// Defaults to 127.0.0.1:8080.
	HTTPAddr string

	// ExpectedBuild seeds the build-time estimate that schedules a
	// deployment's first status poll; the estimate then follows observed
	// builds (EXPECTED_BUILD_TIME, --expected-build-time). Defaults to
	// none: learned from the first builds, or read from what other workers
	// of the team learned; SIM_BUILD_TIME with --simulate.
	ExpectedBuild time.Duration

	// Budget is where the API budget's buckets live (BUDGET, --budget):
	// "shared" across every worker on the same NATS (a KV bucket),
	// "local" to this process, or "off". Defaults to shared.
	Budget string
	// BudgetPlan is the Vercel plan whose published limits preset every
	// endpoint (BUDGET_PLAN, --budget-plan): hobby, pro or enterprise.
	// Defaults to "" (pro against the real API; with --simulate, the
	// simulator's limits).
	BudgetPlan budget.Plan
	// BudgetLimits overrides the limits of endpoint classes, such as
	// "deployments.create=120/5m+450/1h+6000/24h,all=300/1m" (BUDGET_LIMITS,
	// --budget-limits). Defaults to none: the plan's.
	BudgetLimits map[vercel.Endpoint]budget.Limit
	// BudgetHeadroom is the fraction of each limit spent, in (0, 1]
	// (BUDGET_HEADROOM, --budget-headroom). Defaults to 0.97.
	BudgetHeadroom float64
	// BudgetMaxPause caps one pause announced by the API
	// (BUDGET_MAX_PAUSE, --budget-max-pause). Defaults to 15m.
	BudgetMaxPause time.Duration
	// TenantWeights are tenants' weights in the budget's waiting lines,
	// written "vip=3,trial=0.5" (TENANT_WEIGHTS, --tenant-weights).
	// Defaults to none: every tenant weighs 1.
	TenantWeights map[string]float64
	// TenantMaxRunning caps tenants' requests running at once across the
	// fleet, written "trial=2,bulk=8" (TENANT_MAX_RUNNING,
	// --tenant-max-running). Defaults to none.
	TenantMaxRunning map[string]int
	// TenantQuotas are tenants' deploys allowed per window, counted for
	// the fleet, written "trial=20/24h,bulk=50/1h+300/24h"
	// (TENANT_QUOTAS, --tenant-quotas). Defaults to none.
	TenantQuotas map[string][]budget.Cap

	// ConsoleToken allows the console's actions (cancel, replay, purge)
	// to callers that give it (CONSOLE_TOKEN). Unset, the console is
	// read-only.
	ConsoleToken string `json:"-" redact:"secret"`
	// StartTimeout bounds the retries of start-up: connecting to NATS_URL
	// and setting up the streams (START_TIMEOUT, --start-timeout).
	// Defaults to 2m.
	StartTimeout time.Duration
	// AppTTL is how long an unclaimed app lives after its last version
	// before the fleet deletes it (APP_TTL, --app-ttl); 0 keeps apps
	// forever. Defaults to 7 days.
	AppTTL time.Duration
	// AppExpiryDryRun lists the apps past their TTL in the logs and
	// metrics instead of deleting them (APP_EXPIRY=dry-run). Defaults to
	// false.
	AppExpiryDryRun bool
	// AppDomainSuffix gives each app the production domain
	// <app>.<suffix> (APP_DOMAIN_SUFFIX, --app-domain-suffix). Defaults to
	// none.
	AppDomainSuffix string
	// ClaimCallbackURL is the worker's public base URL for claim callbacks
	// (CLAIM_CALLBACK_URL, --claim-callback-url). Defaults to none.
	ClaimCallbackURL string
	// ClaimCallbackSecret is the key the apps' callback secrets derive
	// from (CLAIM_CALLBACK_SECRET). Required with ClaimCallbackURL.
	ClaimCallbackSecret string `json:"-" redact:"secret"`
	// ClaimCheckEvery is how often a live app's project is looked up to
	// find claims (CLAIM_CHECK_EVERY). Defaults to 6h.
	ClaimCheckEvery time.Duration
	// AppUpkeepEvery and AppUpkeepPace are the upkeep's interval between
	// passes and least time between its API calls (APP_UPKEEP_EVERY,
	// APP_UPKEEP_PACE). Default to 30s and 1s.
	AppUpkeepEvery, AppUpkeepPace time.Duration
	// ProjectCap and DatabaseCap are the plan's caps for the inventory's
	// metrics and alert (PROJECT_CAP, DATABASE_CAP). Default to 0:
	// unknown.
	ProjectCap, DatabaseCap int

	// Simulate runs against a built-in Vercel simulator instead of the
	// real API (SIMULATE, --simulate). Defaults to false.
	Simulate bool
	// SimBuildTime is how long a simulated build takes (SIM_BUILD_TIME,
	// --sim-build-time). Defaults to 20s.
	SimBuildTime time.Duration
	// SimLimits are the simulator's per-endpoint rate limits, written as
	// BudgetLimits (SIM_LIMITS, --sim-limits). Defaults to none.
	SimLimits map[vercel.Endpoint]budget.Limit

	// Token is the Vercel access token (ACCESS_TOKEN, or VERCEL_TOKEN;
	// --token works but shows the token to anyone who can list
	// processes). Required unless Simulate.
	Token string `json:"-" redact:"secret"`
	// TeamID is the Vercel team the resources are created in (TEAM_ID,
	// --team-id). Defaults to the token's personal account.
	TeamID string
	// IntegrationConfigID is the Prisma integration's configuration id,
	// which starts with "icfg_" (INTEGRATION_CONFIG_ID,
	// --integration-config-id). Required unless Simulate.
	IntegrationConfigID string
	// PrismaProductID is the Prisma Postgres product on the Vercel
	// marketplace (PRISMA_PRODUCT_ID, --prisma-product-id). Defaults to
	// iap_yVdbiKqs5fLkYDAB.
	PrismaProductID string
	// Region is where databases are created (PRISMA_POSTGRES_REGION,
	// --prisma-postgres-region). Defaults to iad1.
	Region string
	// BillingPlan is the Prisma plan databases are created on
	// (PRISMA_BILLING_PLAN, --prisma-billing-plan). Defaults to
	// partnerEntry.
	BillingPlan string
	// VercelAPIURL is the base URL of the Vercel API, absolute http or
	// https (VERCEL_API_URL, --vercel-api-url). Defaults to
	// https://api.vercel.com.
	VercelAPIURL string `redact:"urls"`
	// ProjectsAPIVersion selects POST /v11/projects or /v10/projects
	// (VERCEL_PROJECTS_API_VERSION, --vercel-projects-api-version).
	// Defaults to 11.
	ProjectsAPIVersion int

	// LogFormat is "text" or "json" (LOG_FORMAT, --log-format). Defaults
	// to text.
	LogFormat string
	// LogLevel is "debug", "info", "warn" or "error" (LOG_LEVEL,
	// --log-level). Defaults to info.
	LogLevel string

	// Warnings describe settings that work but are unwise, such as a
	// token given as a flag; the caller logs them once a logger exists.
	Warnings []string `redact:"skip"`
}

// ConfigError reports a setting that is missing or wrong. Its text is one
// line naming the environment variable and the flag, so the user can find
// the setting whichever way it was given.
type ConfigError struct {
	// Var names the environment variable, with alternatives in
	// parentheses, such as "ACCESS_TOKEN (or VERCEL_TOKEN)".
	Var string
	// Flag is the flag with its dashes, such as "--concurrency"; empty
	// when the flag is not worth suggesting.
	Flag string
	// Msg says what is wrong and, where it helps, what would be right.
	Msg string
}

func (e *ConfigError) Error() string {
	if e.Flag == "" {
		return e.Var + ": " + e.Msg
	}
	return e.Var + " (" + e.Flag + "): " + e.Msg
}

// errHelp is returned by loadConfig after --help printed the usage; the
// caller exits successfully.
var errHelp = flag.ErrHelp

// loadConfig reads the configuration from args (without the program name)
// and getenv. Errors are *ConfigError, errHelp, or a flag syntax error.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	return parseConfig(args, getenv, os.Stdout)
}

// setting is one configuration entry: where it comes from and how its text
// becomes a Config field.
type setting struct {
	env     []string // the first is the one to recommend
	flag    string   // without dashes
	arg     string   // placeholder in the usage; empty for booleans
	def     string   // default, as the text a user would write
	usage   string
	group   string
	boolean bool
	// apply parses v into c. Its error text becomes ConfigError.Msg.
	apply func(c *Config, v string) error
}

// varName is how errors and the usage name the setting's variables.
func (s setting) varName() string {
	if len(s.env) == 1 {
		return s.env[0]
	}
	return s.env[0] + " (or " + strings.Join(s.env[1:], ", ") + ")"
}

func (s setting) configError(msg string) *ConfigError {
	return &ConfigError{Var: s.varName(), Flag: "--" + s.flag, Msg: msg}
}

// Defaults that more than the setting table refer to.
const (
	defaultEmbeddedAddr = "127.0.0.1:4222"
	defaultVercelAPIURL = "https://api.vercel.com"
	httpOff             = "off"
)

// settings lists every setting in usage order. It is a function, not a
// package variable, so nothing can change the table at run time.
func settings() []setting {
	return []setting{
		{
			env: []string{"NATS_URL"}, flag: "nats-url", arg: "URLS", group: "NATS",
			usage: "NATS servers, comma-separated, such as nats://n1:4222,nats://n2:4222. Empty runs an embedded server.",
			apply: func(c *Config, v string) error { c.NATSURL = v; return checkNATSURLs(v) },
		},
		{
			env: []string{"NATS_CREDS"}, flag: "nats-creds", arg: "FILE", group: "NATS",
			usage: "NATS .creds file (user JWT and seed).",
			apply: func(c *Config, v string) error { c.NATSCreds = v; return checkFile(v) },
		},
		{
			env: []string{"NATS_TLS_CA"}, flag: "nats-tls-ca", arg: "FILE", group: "NATS",
			usage: "PEM file of CAs for the NATS servers' certificates. Default: the system's roots.",
			apply: func(c *Config, v string) error { c.NATSTLSCA = v; return checkFile(v) },
		},
		{
			env: []string{"NATS_TLS_CERT"}, flag: "nats-tls-cert", arg: "FILE", group: "NATS",
			usage: "PEM client certificate for NATS; needs NATS_TLS_KEY.",
			apply: func(c *Config, v string) error { c.NATSTLSCert = v; return checkFile(v) },
		},
		{
			env: []string{"NATS_TLS_KEY"}, flag: "nats-tls-key", arg: "FILE", group: "NATS",
			usage: "PEM key of the NATS client certificate; needs NATS_TLS_CERT.",
			apply: func(c *Config, v string) error { c.NATSTLSKey = v; return checkFile(v) },
		},
		{
			env: []string{"STREAM_REPLICAS"}, flag: "stream-replicas", arg: "N", group: "NATS",
			def:   "1",
			usage: "Replicas of every stream and bucket: 1 on one server, 3 in a cluster. Workers of one fleet must agree.",
			apply: func(c *Config, v string) (err error) { c.StreamReplicas, err = parseInt(v, 1, 5); return err },
		},
		{
			env: []string{"MAX_TENANT_CONSUMERS"}, flag: "max-tenant-consumers", arg: "N", group: "NATS",
			def:   "10000",
			usage: "Tenants' consumers the requests stream may hold (tenants with requests within the last hour); a tenant past it waits until one idles out. Workers of one fleet must agree.",
			apply: func(c *Config, v string) (err error) {
				c.MaxTenantConsumers, err = parseInt(v, 1, 1_000_000)
				return err
			},
		},
		{
			env: []string{"TENANT_CONSUMER_IDLE"}, flag: "tenant-consumer-idle", arg: "DURATION", group: "NATS",
			def:   "1h",
			usage: "How long a tenant's consumer outlives its last request; on a cluster each is a Raft group on every node, so a shorter time holds fewer. Workers of one fleet must agree.",
			apply: func(c *Config, v string) (err error) {
				c.TenantConsumerIdle, err = parseDuration(v, time.Minute)
				return err
			},
		},
		{
			env: []string{"EMBEDDED_NATS_ADDR"}, flag: "embedded-nats-addr", arg: "ADDR", group: "NATS",
			def:   defaultEmbeddedAddr,
			usage: "host:port of the embedded NATS server, used when NATS_URL is empty.",
			apply: func(c *Config, v string) error {
				c.EmbeddedAddr = v
				if _, err := parsePort(v, 1); err != nil {
					return fmt.Errorf("%q is not host:port with a port from 1 to 65535", v)
				}
				return nil
			},
		},
		{
			env: []string{"DATA_DIR"}, flag: "data-dir", arg: "DIR", group: "NATS",
			def:   "./data",
			usage: "Directory for the embedded server's JetStream store.",
			apply: func(c *Config, v string) error { c.DataDir = v; return notEmpty(v) },
		},

		{
			env: []string{"CONCURRENCY"}, flag: "concurrency", arg: "N", group: "Worker",
			def:   "16",
			usage: "Deploy jobs run at once, 1 to 10000.",
			apply: func(c *Config, v string) (err error) { c.Concurrency, err = parseInt(v, 1, 10000); return err },
		},
		{
			env: []string{"MAX_ATTEMPTS"}, flag: "max-attempts", arg: "N", group: "Worker",
			def:   "5",
			usage: "Failed attempts of one step (rate-limit waits excluded) before the job fails into the DLQ, 1 to 100.",
			apply: func(c *Config, v string) (err error) { c.MaxAttempts, err = parseInt(v, 1, 100); return err },
		},
		{
			env: []string{"ACK_WAIT"}, flag: "ack-wait", arg: "DURATION", group: "Worker",
			def:   "60s",
			usage: "How long a delivery may go unacknowledged before redelivery, at least 1s.",
			apply: func(c *Config, v string) (err error) { c.AckWait, err = parseDuration(v, time.Second); return err },
		},
		{
			env: []string{"SHUTDOWN_GRACE"}, flag: "shutdown-grace", arg: "DURATION", group: "Worker",
			def:   "30s",
			usage: "How long running jobs may finish after SIGTERM, at least 1s.",
			apply: func(c *Config, v string) (err error) {
				c.ShutdownGrace, err = parseDuration(v, time.Second)
				return err
			},
		},
		{
			env: []string{"KEEP_FAILED_RESOURCES"}, flag: "keep-failed-resources", group: "Worker",
			def: "false", boolean: true,
			usage: "Keep the project and database of a failed job for inspection instead of deleting them.",
			apply: func(c *Config, v string) (err error) { c.KeepFailedResources, err = parseBool(v); return err },
		},
		{
			env: []string{"PROGRESS_EVENTS"}, flag: "progress-events", group: "Worker",
			def: "true", boolean: true,
			usage: "Publish a step_completed event after each step; false publishes the terminal event only.",
			apply: func(c *Config, v string) (err error) { c.ProgressEvents, err = parseBool(v); return err },
		},
		{
			env: []string{"HTTP_ADDR"}, flag: "http-addr", arg: "ADDR", group: "Worker",
			def:   "127.0.0.1:8080",
			usage: `host:port for /healthz, /readyz and /metrics; "off" disables.`,
			apply: func(c *Config, v string) error {
				if v == "" || strings.EqualFold(v, httpOff) {
					c.HTTPAddr = ""
					return nil
				}
				c.HTTPAddr = v
				if _, err := parsePort(v, 0); err != nil {
					return fmt.Errorf(`%q is not host:port (or "off")`, v)
				}
				return nil
			},
		},

		{
			env: []string{"EXPECTED_BUILD_TIME"}, flag: "expected-build-time", arg: "DURATION", group: "Worker",
			usage: "First guess of a build's duration, which schedules the first status poll until builds are observed. Default: none, learned from the first builds (their event streams) and shared by the fleet; SIM_BUILD_TIME with --simulate.",
			apply: func(c *Config, v string) (err error) {
				if v == "" {
					return nil
				}
				c.ExpectedBuild, err = parseDuration(v, time.Second)
				return err
			},
		},
		{
			env: []string{"BUDGET"}, flag: "budget", arg: "MODE", group: "Budget",
			def:   "shared",
			usage: "Where the API budget lives: shared (every worker on this NATS), local (this process only) or off.",
			apply: func(c *Config, v string) error {
				switch v {
				case "shared", "local", "off":
					c.Budget = v
					return nil
				}
				return fmt.Errorf("%q is not shared, local or off", v)
			},
		},
		{
			env: []string{"BUDGET_PLAN"}, flag: "budget-plan", arg: "PLAN", group: "Budget",
			usage: "The Vercel team's plan, whose published limits preset every endpoint: hobby, pro or enterprise (default pro; with --simulate, the simulator's limits).",
			apply: func(c *Config, v string) (err error) {
				if v == "" {
					return nil
				}
				c.BudgetPlan, err = budget.ParsePlan(v)
				return err
			},
		},
		{
			env: []string{"BUDGET_LIMITS"}, flag: "budget-limits", arg: "LIMITS", group: "Budget",
			usage: "Limits per endpoint class overriding the plan's, e.g. deployments.create=120/5m+450/1h+6000/24h,all=300/1m: windows joined by + are all enforced at once. The budget also follows X-RateLimit-Limit.",
			apply: func(c *Config, v string) (err error) { c.BudgetLimits, err = budget.ParseLimits(v); return err },
		},
		{
			env: []string{"BUDGET_HEADROOM"}, flag: "budget-headroom", arg: "FRACTION", group: "Budget",
			def:   "0.97",
			usage: "Fraction of each limit spent, in (0, 1]; the rest absorbs timing jitter.",
			apply: func(c *Config, v string) error {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f <= 0 || f > 1 {
					return fmt.Errorf("%q is not a number in (0, 1]", v)
				}
				c.BudgetHeadroom = f
				return nil
			},
		},
		{
			env: []string{"TENANT_WEIGHTS"}, flag: "tenant-weights", arg: "WEIGHTS", group: "Budget",
			usage: "Tenants' shares while several wait for one API endpoint, e.g. vip=3,trial=0.5; others weigh 1. Give every worker the same.",
			apply: func(c *Config, v string) (err error) { c.TenantWeights, err = parseWeights(v); return err },
		},
		{
			env: []string{"TENANT_MAX_RUNNING"}, flag: "tenant-max-running", arg: "CAPS", group: "Budget",
			usage: "Tenants' requests running at once across the fleet, e.g. trial=2,bulk=8 (enforced by NATS); others are capped only by the fleet. Give every worker the same.",
			apply: func(c *Config, v string) (err error) { c.TenantMaxRunning, err = parseCaps(v); return err },
		},
		{
			env: []string{"TENANT_QUOTAS"}, flag: "tenant-quotas", arg: "QUOTAS", group: "Budget",
			usage: "Tenants' deploys allowed per window across the fleet, e.g. trial=20/24h,bulk=50/1h+300/24h; a request past its quota waits for it, or is rejected if it set overQuota: reject.",
			apply: func(c *Config, v string) (err error) { c.TenantQuotas, err = parseQuotas(v); return err },
		},
		{
			env: []string{"BUDGET_MAX_PAUSE"}, flag: "budget-max-pause", arg: "DURATION", group: "Budget",
			def:   "15m",
			usage: "Longest pause taken on one 429 or 402; longer announced waits are capped, logged and counted.",
			apply: func(c *Config, v string) (err error) {
				c.BudgetMaxPause, err = parseDuration(v, time.Second)
				return err
			},
		},

		{
			env: []string{"CONSOLE_TOKEN"}, flag: "console-token", arg: "TOKEN", group: "Worker",
			usage: "Allows the console's actions (cancel, dead-letter replay and purge) to callers that give it (Authorization: Bearer); at least 16 characters. Unset, the console at / on HTTP_ADDR is read-only. Never logged or shown.",
			apply: func(c *Config, v string) error {
				if v != "" && len(v) < 16 {
					return errors.New("shorter than 16 characters")
				}
				c.ConsoleToken = v
				return nil
			},
		},
		{
			env: []string{"START_TIMEOUT"}, flag: "start-timeout", arg: "DURATION", group: "NATS",
			def:   "2m",
			usage: "How long start-up retries connecting to NATS_URL and setting up the streams (a cluster still electing leaders) before the worker gives up and exits 1.",
			apply: func(c *Config, v string) (err error) {
				c.StartTimeout, err = parseDuration(v, 100*time.Millisecond)
				return err
			},
		},
		{
			env: []string{"APP_TTL"}, flag: "app-ttl", arg: "DURATION", group: "Apps",
			def:   "7d",
			usage: "How long an unclaimed app lives after its last version before the fleet deletes its project and database (e.g. 7d, 36h); 0 keeps apps forever.",
			apply: func(c *Config, v string) (err error) { c.AppTTL, err = parseDays(v); return err },
		},
		{
			env: []string{"APP_EXPIRY"}, flag: "app-expiry", arg: "EXPIRY", group: "Apps",
			def:   "delete",
			usage: "delete, or dry-run: log and count the apps past APP_TTL (deployq_apps_expiry_due) without deleting them.",
			apply: func(c *Config, v string) error {
				mode, err := oneOf(v, "delete", "dry-run")
				c.AppExpiryDryRun = mode == "dry-run"
				return err
			},
		},
		{
			env: []string{"APP_DOMAIN_SUFFIX"}, flag: "app-domain-suffix", arg: "DOMAIN", group: "Apps",
			usage: "The platform's domain under which each app is served, <app>.<suffix> (a domain the Vercel team has); the URL in results.",
			apply: func(c *Config, v string) error {
				v = strings.ToLower(strings.Trim(v, "."))
				if v == "" {
					return nil
				}
				if !strings.Contains(v, ".") || strings.ContainsAny(v, "/: ") {
					return fmt.Errorf("%q is not a domain such as apps.example.com", v)
				}
				c.AppDomainSuffix = v
				return nil
			},
		},
		{
			env: []string{"CLAIM_CALLBACK_URL"}, flag: "claim-callback-url", arg: "URL", group: "Apps",
			usage: "This worker's public base URL (https://…): claim codes carry the callback <URL>/claims/<tenant>/<app>, served on HTTP_ADDR, which Vercel calls when an app is claimed. Needs CLAIM_CALLBACK_SECRET.",
			apply: func(c *Config, v string) error {
				if v == "" {
					return nil
				}
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					return fmt.Errorf("%q is not an absolute http(s) URL", v)
				}
				c.ClaimCallbackURL = strings.TrimRight(v, "/")
				return nil
			},
		},
		{
			env: []string{"CLAIM_CALLBACK_SECRET"}, flag: "claim-callback-secret", arg: "KEY", group: "Apps",
			usage: "Key the apps' callback secrets are derived from (HMAC-SHA256); at least 16 characters. Never logged.",
			apply: func(c *Config, v string) error {
				if v != "" && len(v) < 16 {
					return errors.New("shorter than 16 characters")
				}
				c.ClaimCallbackSecret = v
				return nil
			},
		},
		{
			env: []string{"CLAIM_CHECK_EVERY"}, flag: "claim-check-every", arg: "DURATION", group: "Apps",
			def:   "6h",
			usage: "How often a live app's project is looked up (one API read) to find claims no callback reported.",
			apply: func(c *Config, v string) (err error) { c.ClaimCheckEvery, err = parseDays(v); return err },
		},
		{
			env: []string{"APP_UPKEEP_EVERY"}, flag: "app-upkeep-every", arg: "DURATION", group: "Apps",
			def:   "30s",
			usage: "Interval between the upkeep's passes over the apps (claims to announce, checks, expiry, the inventory's metrics).",
			apply: func(c *Config, v string) (err error) {
				c.AppUpkeepEvery, err = parseDuration(v, 10*time.Millisecond)
				return err
			},
		},
		{
			env: []string{"APP_UPKEEP_PACE"}, flag: "app-upkeep-pace", arg: "DURATION", group: "Apps",
			def:   "1s",
			usage: "Least time between two of the upkeep's API calls, so checks and expiry take a trickle of the budget.",
			apply: func(c *Config, v string) (err error) {
				c.AppUpkeepPace, err = parseDuration(v, time.Millisecond)
				return err
			},
		},
		{
			env: []string{"PROJECT_CAP"}, flag: "project-cap", arg: "COUNT", group: "Apps",
			usage: "The team's project cap (Vercel Hobby: 200), for deployq_inventory_cap and its alert.",
			apply: func(c *Config, v string) (err error) { c.ProjectCap, err = parseCount(v); return err },
		},
		{
			env: []string{"DATABASE_CAP"}, flag: "database-cap", arg: "COUNT", group: "Apps",
			usage: "The Prisma workspace's database cap (Free: 50, paid: 1000), for deployq_inventory_cap and its alert.",
			apply: func(c *Config, v string) (err error) { c.DatabaseCap, err = parseCount(v); return err },
		},

		{
			env: []string{"SIMULATE"}, flag: "simulate", group: "Simulator",
			def: "false", boolean: true,
			usage: "Run against a built-in Vercel simulator; no token needed.",
			apply: func(c *Config, v string) (err error) { c.Simulate, err = parseBool(v); return err },
		},
		{
			env: []string{"SIM_BUILD_TIME"}, flag: "sim-build-time", arg: "DURATION", group: "Simulator",
			def:   "20s",
			usage: "How long a simulated build takes.",
			apply: func(c *Config, v string) (err error) { c.SimBuildTime, err = parseDuration(v, 0); return err },
		},
		{
			env: []string{"SIM_LIMITS"}, flag: "sim-limits", arg: "LIMITS", group: "Simulator",
			usage: "Rate limits the simulator enforces (429s as Vercel sends them), e.g. deployments.create=20/10s or deployments.create=4/10s+10/1m (every window at once).",
			apply: func(c *Config, v string) (err error) { c.SimLimits, err = budget.ParseLimits(v); return err },
		},

		{
			env: []string{"ACCESS_TOKEN", "VERCEL_TOKEN"}, flag: "token", arg: "TOKEN", group: "Vercel",
			usage: "Vercel access token; required unless --simulate. Prefer the variable: a flag shows in the process list.",
			apply: func(c *Config, v string) error { c.Token = v; return nil },
		},
		{
			env: []string{"TEAM_ID"}, flag: "team-id", arg: "ID", group: "Vercel",
			usage: "Vercel team to create resources in. Default: the token's personal account.",
			apply: func(c *Config, v string) error { c.TeamID = v; return noSpace(v) },
		},
		{
			env: []string{"INTEGRATION_CONFIG_ID"}, flag: "integration-config-id", arg: "ID", group: "Vercel",
			usage: "Prisma integration configuration id (icfg_…); required unless --simulate.",
			apply: func(c *Config, v string) error {
				c.IntegrationConfigID = v
				if v != "" && !strings.HasPrefix(v, "icfg_") {
					return fmt.Errorf(`%q does not start with "icfg_"`, v)
				}
				return noSpace(v)
			},
		},
		{
			env: []string{"PRISMA_PRODUCT_ID"}, flag: "prisma-product-id", arg: "ID", group: "Vercel",
			def:   "iap_yVdbiKqs5fLkYDAB",
			usage: "Prisma Postgres product id on the Vercel marketplace.",
			apply: func(c *Config, v string) error { c.PrismaProductID = v; return notEmptyNoSpace(v) },
		},
		{
			env: []string{"PRISMA_POSTGRES_REGION"}, flag: "prisma-postgres-region", arg: "REGION", group: "Vercel",
			def:   "iad1",
			usage: "Region databases are created in.",
			apply: func(c *Config, v string) error { c.Region = v; return notEmptyNoSpace(v) },
		},
		{
			env: []string{"PRISMA_BILLING_PLAN"}, flag: "prisma-billing-plan", arg: "PLAN", group: "Vercel",
			def:   "partnerEntry",
			usage: "Prisma billing plan databases are created on.",
			apply: func(c *Config, v string) error { c.BillingPlan = v; return notEmptyNoSpace(v) },
		},
		{
			env: []string{"VERCEL_API_URL"}, flag: "vercel-api-url", arg: "URL", group: "Vercel",
			def:   defaultVercelAPIURL,
			usage: "Base URL of the Vercel API.",
			apply: func(c *Config, v string) error {
				c.VercelAPIURL = v
				u, err := url.Parse(v)
				if err != nil {
					return errors.New("is not a URL")
				}
				if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return fmt.Errorf("%q is not an absolute http or https URL", redactURLs(v))
				}
				return nil
			},
		},
		{
			env: []string{"VERCEL_PROJECTS_API_VERSION"}, flag: "vercel-projects-api-version", arg: "N", group: "Vercel",
			def:   "11",
			usage: "Version of the create-project endpoint: 11 or 10.",
			apply: func(c *Config, v string) error {
				switch v {
				case "11", "10":
					c.ProjectsAPIVersion, _ = strconv.Atoi(v)
					return nil
				}
				return fmt.Errorf("%q is not 11 or 10", v)
			},
		},

		{
			env: []string{"LOG_FORMAT"}, flag: "log-format", arg: "FORMAT", group: "Logging",
			def:   "text",
			usage: "text or json.",
			apply: func(c *Config, v string) (err error) { c.LogFormat, err = oneOf(v, "text", "json"); return err },
		},
		{
			env: []string{"LOG_LEVEL"}, flag: "log-level", arg: "LEVEL", group: "Logging",
			def:   "info",
			usage: "debug, info, warn or error.",
			apply: func(c *Config, v string) (err error) {
				c.LogLevel, err = oneOf(v, "debug", "info", "warn", "error")
				return err
			},
		},
	}
}

// rawFlag keeps a flag's text as given, so that parsing and its error
// messages are the same for flags and variables.
type rawFlag struct {
	value   string
	set     bool
	boolean bool
}

func (f *rawFlag) String() string     { return f.value }
func (f *rawFlag) Set(v string) error { f.value, f.set = v, true; return nil }
func (f *rawFlag) IsBoolFlag() bool   { return f.boolean }

// parseConfig is loadConfig with the usage written to help.
func parseConfig(args []string, getenv func(string) string, help io.Writer) (Config, error) {
	all := settings()
	fset := flag.NewFlagSet("worker", flag.ContinueOnError)
	// The flag package would print its errors and the whole usage to
	// stderr on any mistake; the caller prints one line instead.
	fset.SetOutput(io.Discard)
	fset.Usage = func() {}
	raws := make([]*rawFlag, len(all))
	for i, s := range all {
		raws[i] = &rawFlag{boolean: s.boolean}
		fset.Var(raws[i], s.flag, s.usage)
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(help, all)
			return Config{}, errHelp
		}
		return Config{}, fmt.Errorf("%w (run with --help for the list of flags)", err)
	}
	if fset.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q: the worker takes flags only (run with --help)", fset.Arg(0))
	}

	var cfg Config
	for i, s := range all {
		v, fromFlag := s.def, false
		if raws[i].set {
			v, fromFlag = raws[i].value, true
		} else {
			// An empty variable counts as unset: orchestrators often
			// define every variable and leave the unused ones empty.
			for _, name := range s.env {
				if ev := getenv(name); strings.TrimSpace(ev) != "" {
					v = ev
					break
				}
			}
		}
		// Values pasted into secrets and env files often carry a
		// trailing newline or spaces that no setting can mean.
		v = strings.TrimSpace(v)
		if err := s.apply(&cfg, v); err != nil {
			return Config{}, s.configError(err.Error())
		}
		if s.flag == "token" && fromFlag && v != "" {
			cfg.Warnings = append(cfg.Warnings,
				"--token is visible to anyone who can list processes; set ACCESS_TOKEN instead")
		}
	}
	if err := checkConfig(&cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// checkConfig validates what no single setting can: requirements and
// combinations. It may add warnings to c.
func checkConfig(c *Config) error {
	if !c.Simulate {
		if c.Token == "" {
			return &ConfigError{Var: "ACCESS_TOKEN (or VERCEL_TOKEN)", Msg: "required unless --simulate is set"}
		}
		if c.IntegrationConfigID == "" {
			return &ConfigError{Var: "INTEGRATION_CONFIG_ID", Flag: "--integration-config-id",
				Msg: "required unless --simulate is set; it is the Prisma integration's id, icfg_…"}
		}
	}
	if c.ClaimCallbackURL != "" && c.ClaimCallbackSecret == "" {
		return &ConfigError{Var: "CLAIM_CALLBACK_SECRET", Flag: "--claim-callback-secret",
			Msg: "required when CLAIM_CALLBACK_URL is set; Vercel signs the callback with it"}
	}
	if c.ClaimCallbackURL != "" && c.HTTPAddr == httpOff {
		return &ConfigError{Var: "CLAIM_CALLBACK_URL", Flag: "--claim-callback-url",
			Msg: "set, but HTTP_ADDR is off: the callback is served on the worker's HTTP server"}
	}
	if c.NATSTLSCert != "" && c.NATSTLSKey == "" {
		return &ConfigError{Var: "NATS_TLS_KEY", Flag: "--nats-tls-key",
			Msg: "required when NATS_TLS_CERT is set; a client certificate needs its key"}
	}
	if c.NATSTLSKey != "" && c.NATSTLSCert == "" {
		return &ConfigError{Var: "NATS_TLS_CERT", Flag: "--nats-tls-cert",
			Msg: "required when NATS_TLS_KEY is set; a key needs its client certificate"}
	}
	if c.NATSURL == "" {
		// Credentials without a URL would silently run the embedded
		// server, not the cluster the operator meant to reach.
		const msg = "set, but NATS_URL is empty and the embedded server takes no credentials; set NATS_URL too"
		switch {
		case c.NATSCreds != "":
			return &ConfigError{Var: "NATS_CREDS", Flag: "--nats-creds", Msg: msg}
		case c.NATSTLSCA != "":
			return &ConfigError{Var: "NATS_TLS_CA", Flag: "--nats-tls-ca", Msg: msg}
		case c.NATSTLSCert != "":
			return &ConfigError{Var: "NATS_TLS_CERT", Flag: "--nats-tls-cert", Msg: msg}
		}
		if !isLoopback(c.EmbeddedAddr) {
			c.Warnings = append(c.Warnings, fmt.Sprintf(
				"the embedded NATS server listens on %s without authentication; anyone who can reach it can publish deploy requests",
				c.EmbeddedAddr))
		}
	}
	return nil
}

func printUsage(w io.Writer, all []setting) {
	fmt.Fprint(w, `Usage: worker [flags]

worker takes deploy requests from NATS JetStream and runs each through the
Vercel + Prisma Postgres pipeline. Every setting is a flag or an environment
variable (named in brackets); a flag wins over its variable.
`)
	group := ""
	for _, s := range all {
		if s.group != group {
			group = s.group
			fmt.Fprintf(w, "\n%s:\n", group)
		}
		name := "--" + s.flag
		if s.arg != "" {
			name += " " + s.arg
		}
		fmt.Fprintf(w, "  %s  [%s]\n        %s", name, strings.Join(s.env, ", "), s.usage)
		if s.def != "" {
			fmt.Fprintf(w, " Default: %s.", s.def)
		}
		fmt.Fprintln(w)
	}
}

// String shows every setting, with the token and any URL passwords
// replaced, so the configuration can be logged at startup.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("Config{")
	for i, f := range c.printable() {
		if i > 0 {
			b.WriteByte(' ')
		}
		if s, ok := f.value.(string); ok {
			fmt.Fprintf(&b, "%s:%q", f.name, s)
		} else {
			fmt.Fprintf(&b, "%s:%v", f.name, f.value)
		}
	}
	b.WriteByte('}')
	return b.String()
}

// Format makes every verb, %#v and %x included, print String's redacted
// form: a Stringer alone would still let %#v print the raw fields.
func (c Config) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", c.String())
		return
	}
	io.WriteString(f, c.String())
}

// GoString backs Format for %#v, so callers of GoString get the same.
func (c Config) GoString() string { return c.String() }

// LogValue logs the configuration as a group of redacted attributes.
func (c Config) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, f := range c.printable() {
		attrs = append(attrs, slog.Any(f.name, f.value))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON encodes the same redacted fields, durations as text, so a
// Config dumped as JSON (a debug endpoint, a structured log) stays safe.
func (c Config) MarshalJSON() ([]byte, error) {
	m := make(map[string]any)
	for _, f := range c.printable() {
		if d, ok := f.value.(time.Duration); ok {
			m[f.name] = d.String()
			continue
		}
		m[f.name] = f.value
	}
	return json.Marshal(m)
}

type printableField struct {
	name  string
	value any
}

// printable lists the fields by reflection, so a field added later is
// printed without anyone remembering to; the redact tag marks the secrets.
func (c Config) printable() []printableField {
	v := reflect.ValueOf(c)
	t := v.Type()
	var out []printableField
	for i := range t.NumField() {
		sf := t.Field(i)
		fv := v.Field(i).Interface()
		switch sf.Tag.Get("redact") {
		case "skip":
			continue
		case "secret":
			if s, _ := fv.(string); s != "" {
				fv = "[REDACTED]"
			}
		case "urls":
			fv = redactURLs(fv.(string))
		}
		out = append(out, printableField{sf.Name, fv})
	}
	return out
}

// redactURLs hides the password in each comma-separated URL.
func redactURLs(s string) string {
	if s == "" {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			// Unparseable text may still hold a secret; show none of it.
			parts[i] = "[UNPARSEABLE]"
			continue
		}
		if u.User != nil {
			parts[i] = u.Redacted()
			if _, hasPass := u.User.Password(); !hasPass {
				// A bare user part is a token (nats://TOKEN@host).
				u.User = url.User("REDACTED")
				parts[i] = u.String()
			}
		}
	}
	return strings.Join(parts, ",")
}

// Parsers. Each error says what the value is not, quoting it, so the line
// that ConfigError prints is enough to fix the setting.

func parseInt(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a whole number from %d to %d", v, lo, hi)
	}
	return n, nil
}

func parseDuration(v string, lo time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 45s, 2m or 1m30s", v)
	}
	if d < lo {
		if lo == 0 {
			return 0, fmt.Errorf("%q is negative", v)
		}
		return 0, fmt.Errorf("%q is shorter than %s", v, lo)
	}
	return d, nil
}

// parseDays reads a duration that may also be written in days ("7d").
func parseDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%q is not a duration such as 7d, 36h or 0", v)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	if v == "0" {
		return 0, nil
	}
	return parseDuration(v, 0)
}

// parseCount reads a count of zero or more.
func parseCount(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a count", v)
	}
	return n, nil
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", v)
	}
	return b, nil
}

func oneOf(v string, allowed ...string) (string, error) {
	l := strings.ToLower(v)
	for _, a := range allowed {
		if l == a {
			return l, nil
		}
	}
	last := len(allowed) - 1
	return "", fmt.Errorf("%q is not %s or %s", v, strings.Join(allowed[:last], ", "), allowed[last])
}

// parsePort checks that v is host:port with a port from lo to 65535.
func parsePort(v string, lo int) (int, error) {
	_, p, err := net.SplitHostPort(v)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < lo || n > 65535 {
		return 0, fmt.Errorf("bad port %q", p)
	}
	return n, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func notEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func noSpace(v string) error {
	if strings.ContainsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		return fmt.Errorf("%q contains whitespace", v)
	}
	return nil
}

func notEmptyNoSpace(v string) error {
	if err := notEmpty(v); err != nil {
		return err
	}
	return noSpace(v)
}

// checkFile requires v, when set, to name a readable regular file, so a
// typo fails at startup rather than at the first reconnect.
func checkFile(v string) error {
	if v == "" {
		return nil
	}
	fi, err := os.Stat(v)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%q does not exist", v)
	case err != nil:
		return fmt.Errorf("%q cannot be read: %v", v, errors.Unwrap(err))
	case fi.IsDir():
		return fmt.Errorf("%q is a directory, not a file", v)
	}
	f, err := os.Open(v)
	if err != nil {
		return fmt.Errorf("%q cannot be read: %v", v, errors.Unwrap(err))
	}
	return f.Close()
}

// checkNATSURLs accepts what nats.Connect does: comma-separated URLs with
// a nats, tls, ws or wss scheme, or bare host:port. Its messages show URLs
// without their passwords.
func checkNATSURLs(v string) error {
	if v == "" {
		return nil
	}
	for i, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return fmt.Errorf("entry %d is empty; separate URLs with single commas", i+1)
		}
		if !strings.Contains(p, "://") {
			p = "nats://" + p
		}
		u, err := url.Parse(p)
		if err != nil || u.Host == "" {
			return fmt.Errorf("entry %d is not a NATS URL such as nats://host:4222", i+1)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("%q is not a NATS URL such as nats://host:4222 (scheme nats, tls, ws or wss)", redactURLs(u.String()))
		}
	}
	return nil
}

// parseCaps reads "tenant=N" pairs separated by commas.
func parseCaps(v string) (map[string]int, error) {
	return parseTenantValues(v, "tenant=N with N at least 1", func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= 1
	})
}

// parseQuotas reads "tenant=N/window[+N/window]" pairs separated by
// commas.
func parseQuotas(v string) (map[string][]budget.Cap, error) {
	return parseTenantValues(v, "tenant=N/window, windows joined by + (trial=20/24h)", func(s string) ([]budget.Cap, bool) {
		caps, err := budget.ParseQuota(s)
		return caps, err == nil
	})
}

// parseWeights reads "tenant=weight" pairs separated by commas.
func parseWeights(v string) (map[string]float64, error) {
	return parseTenantValues(v, "tenant=weight with a weight in (0, 1000]", func(s string) (float64, bool) {
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil && f > 0 && f <= 1000
	})
}

// parseTenantValues reads "tenant=value" pairs separated by commas, each
// value read by parse; want says what a pair must look like. An empty
// list gives nil.
func parseTenantValues[T any](v, want string, parse func(string) (T, bool)) (map[string]T, error) {
	out := map[string]T{}
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		tenant, value, found := strings.Cut(part, "=")
		tenant = strings.TrimSpace(tenant)
		x, ok := parse(strings.TrimSpace(value))
		if !found || tenant == "" || !ok {
			return nil, fmt.Errorf("%q: want %s", part, want)
		}
		out[tenant] = x
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
