package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"
)

const defaultNATSURL = "nats://127.0.0.1:4222"

// natsConfig says how to reach NATS. The environment gives the defaults
// and flags override them, so the same values work for the worker and
// the CLI.
type natsConfig struct {
	URL, Creds, TLSCA, TLSCert, TLSKey string
	// InboxPrefix replaces _INBOX for replies: a tenant's NATS user may
	// only receive on its own prefix (deploy/nats/accounts.conf).
	InboxPrefix string
	// Tenant is the tenant whose NATS user connects: the client then does
	// only what that user may (jobs.ClientConfig.Tenant), and replies come
	// on _INBOX_<tenant> unless InboxPrefix says otherwise.
	Tenant string
}

// fillFromEnv sets each connection setting whose flag was not given
// (changed reports which were) from its environment variable, and the URL
// from defaultNATSURL when neither says.
func (c *natsConfig) fillFromEnv(getenv func(string) string, changed func(flag string) bool) {
	for _, s := range []struct {
		flag, env string
		v         *string
	}{
		{"nats-url", "NATS_URL", &c.URL},
		{"nats-creds", "NATS_CREDS", &c.Creds},
		{"nats-tls-ca", "NATS_TLS_CA", &c.TLSCA},
		{"nats-tls-cert", "NATS_TLS_CERT", &c.TLSCert},
		{"nats-tls-key", "NATS_TLS_KEY", &c.TLSKey},
		{"nats-inbox-prefix", "NATS_INBOX_PREFIX", &c.InboxPrefix},
		{"nats-tenant", "NATS_TENANT", &c.Tenant},
	} {
		if !changed(s.flag) {
			*s.v = getenv(s.env)
		}
	}
	if c.URL == "" && !changed("nats-url") {
		c.URL = defaultNATSURL
	}
}

// register binds the connection flags to c. They have no defaults in the
// flag set: the environment's are applied after parsing (fillFromEnv).
func (c *natsConfig) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.URL, "nats-url", "", "NATS server `URL`(s), comma-separated; env NATS_URL (default "+defaultNATSURL+")")
	fs.StringVar(&c.Creds, "nats-creds", "", "NATS credentials `file`; env NATS_CREDS")
	fs.StringVar(&c.TLSCA, "nats-tls-ca", "", "CA bundle that signs the NATS server's certificate; env NATS_TLS_CA")
	fs.StringVar(&c.TLSCert, "nats-tls-cert", "", "client certificate for NATS (with --nats-tls-key); env NATS_TLS_CERT")
	fs.StringVar(&c.TLSKey, "nats-tls-key", "", "client key for NATS; env NATS_TLS_KEY")
	fs.StringVar(&c.Tenant, "nats-tenant", "", "connect as this `tenant`'s NATS user (deploy/nats/accounts.conf): submit, wait,\nstatus and watch for it only, replies on _INBOX_<tenant>; env NATS_TENANT")
	fs.StringVar(&c.InboxPrefix, "nats-inbox-prefix", "", "reply subject `prefix`, if not _INBOX_<tenant>; env NATS_INBOX_PREFIX")
}

func (c natsConfig) validate() error {
	if c.Tenant != "" {
		if err := checkTenant(c.Tenant); err != nil {
			return usagef("--nats-tenant: %v", err)
		}
	}
	if strings.TrimSpace(c.URL) == "" {
		return usagef("--nats-url is empty")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return usagef("--nats-tls-cert and --nats-tls-key (NATS_TLS_CERT, NATS_TLS_KEY) go together")
	}
	if p := c.InboxPrefix; p != "" && (strings.ContainsAny(p, " \t*>") || strings.HasSuffix(p, ".") || strings.HasPrefix(p, ".")) {
		return usagef("--nats-inbox-prefix %q: must be a subject prefix without wildcards, such as _INBOX_acme", p)
	}
	return nil
}

// redactedURL shows where the CLI tried to connect without printing a
// password or token embedded in the URL.
func (c natsConfig) redactedURL() string {
	parts := strings.Split(c.URL, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			if _, hasPassword := u.User.Password(); hasPassword {
				p = u.Redacted()
			} else {
				// A bare user part is how NATS URLs carry tokens.
				u.User = url.User("xxxxx")
				p = u.String()
			}
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// session is an open connection with the deployq client bound to it.
type session struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	client *jobs.Client
	// tenant is set when connected as a tenant's user (--nats-tenant).
	tenant string
}

func (s *session) close() { s.nc.Close() }

// connect opens NATS and binds the client; c has been validated. Its
// errors are written for the person at the terminal: where it tried, and
// what usually fixes it.
func connect(ctx context.Context, c natsConfig) (*session, error) {
	opts := []nats.Option{
		nats.Name("deployq-enqueue"),
		nats.Timeout(5 * time.Second),
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	switch {
	case c.InboxPrefix != "":
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	case c.Tenant != "":
		opts = append(opts, nats.CustomInboxPrefix("_INBOX_"+c.Tenant))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, connectError(c, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("NATS at %s: %w", c.redactedURL(), err)
	}
	client, err := jobs.NewClient(ctx, js, jobs.ClientConfig{Tenant: c.Tenant})
	if err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("NATS at %s has no JetStream for this account: %w", c.redactedURL(), err)
		}
		return nil, fmt.Errorf("NATS at %s: %w", c.redactedURL(), err)
	}
	return &session{nc: nc, js: js, client: client, tenant: c.Tenant}, nil
}

func connectError(c natsConfig, err error) error {
	hint := "is a worker running? Start one with `make demo` or `go run ./cmd/worker --simulate`, or set --nats-url / NATS_URL"
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired),
		errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAccountAuthExpired):
		hint = "check --nats-creds / NATS_CREDS"
	case strings.Contains(err.Error(), "tls") || strings.Contains(err.Error(), "x509") || strings.Contains(err.Error(), "certificate"):
		hint = "check --nats-tls-ca, --nats-tls-cert and --nats-tls-key (NATS_TLS_*)"
	}
	return fmt.Errorf("cannot connect to NATS at %s: %w\n  %s", c.redactedURL(), err, hint)
}
