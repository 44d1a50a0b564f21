package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

func natsConfigFromEnv(getenv func(string) string) natsConfig {
	c := natsConfig{
		URL:     getenv("NATS_URL"),
		Creds:   getenv("NATS_CREDS"),
		TLSCA:   getenv("NATS_TLS_CA"),
		TLSCert: getenv("NATS_TLS_CERT"),
		TLSKey:  getenv("NATS_TLS_KEY"),

		InboxPrefix: getenv("NATS_INBOX_PREFIX"),
		Tenant:      getenv("NATS_TENANT"),
	}
	if c.URL == "" {
		c.URL = defaultNATSURL
	}
	return c
}

// register binds the connection flags to c with c's current values as
// defaults: registered on the global flag set and again on a subcommand's,
// the flags work on either side of the command name.
func (c *natsConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "nats-url", c.URL, "NATS server URL(s), comma-separated (env NATS_URL)")
	fs.StringVar(&c.Creds, "nats-creds", c.Creds, "NATS credentials file (env NATS_CREDS)")
	fs.StringVar(&c.TLSCA, "nats-tls-ca", c.TLSCA, "CA bundle that signs the NATS server's certificate (env NATS_TLS_CA)")
	fs.StringVar(&c.TLSCert, "nats-tls-cert", c.TLSCert, "client certificate for NATS (env NATS_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "nats-tls-key", c.TLSKey, "client key for NATS (env NATS_TLS_KEY)")
	fs.StringVar(&c.InboxPrefix, "nats-inbox-prefix", c.InboxPrefix, "reply subject prefix, such as _INBOX_acme for a tenant's user (env NATS_INBOX_PREFIX)")
	fs.StringVar(&c.Tenant, "nats-tenant", c.Tenant, "connect as this tenant's NATS user: submit, wait, status and watch for it only, replies on _INBOX_<tenant> (env NATS_TENANT)")
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
