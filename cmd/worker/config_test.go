package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/budget"
)

const testToken = "vercel_tok_s3cr3t_4ever"

// env is a getenv backed by a map.
func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// realEnv is the least a real (non-simulated) worker needs.
func realEnv(extra map[string]string) map[string]string {
	kv := map[string]string{"ACCESS_TOKEN": testToken, "INTEGRATION_CONFIG_ID": "icfg_abc"}
	for k, v := range extra {
		kv[k] = v
	}
	return kv
}

func load(t *testing.T, args []string, kv map[string]string) (Config, error) {
	t.Helper()
	var help bytes.Buffer
	return parseConfig(args, env(kv), &help)
}

func tempFile(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil, realEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		EmbeddedAddr:        "127.0.0.1:4222",
		DataDir:             "./data",
		Concurrency:         16,
		MaxAttempts:         5,
		AckWait:             60 * time.Second,
		ShutdownGrace:       30 * time.Second,
		ProgressEvents:      true,
		HTTPAddr:            "127.0.0.1:8080",
		StreamReplicas:      1,
		MaxTenantConsumers:  10000,
		TenantConsumerIdle:  time.Hour,
		Budget:              "shared",
		BudgetHeadroom:      0.97,
		BudgetMaxPause:      15 * time.Minute,
		AppTTL:              7 * 24 * time.Hour,
		StartTimeout:        2 * time.Minute,
		ClaimCheckEvery:     6 * time.Hour,
		AppUpkeepEvery:      30 * time.Second,
		AppUpkeepPace:       time.Second,
		SimBuildTime:        20 * time.Second,
		Token:               testToken,
		IntegrationConfigID: "icfg_abc",
		PrismaProductID:     "iap_yVdbiKqs5fLkYDAB",
		Region:              "iad1",
		BillingPlan:         "partnerEntry",
		VercelAPIURL:        "https://api.vercel.com",
		ProjectsAPIVersion:  11,
		LogFormat:           "text",
		LogLevel:            "info",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigValues(t *testing.T) {
	t.Parallel()
	creds, ca, cert, key := tempFile(t, "u.creds"), tempFile(t, "ca.pem"), tempFile(t, "c.pem"), tempFile(t, "k.pem")
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(Config) bool
	}{
		{"env sets", nil, realEnv(map[string]string{"CONCURRENCY": "64"}),
			func(c Config) bool { return c.Concurrency == 64 }},
		{"flag beats env", []string{"--concurrency", "8"}, realEnv(map[string]string{"CONCURRENCY": "64"}),
			func(c Config) bool { return c.Concurrency == 8 }},
		{"single dash flag", []string{"-concurrency=9"}, realEnv(nil),
			func(c Config) bool { return c.Concurrency == 9 }},
		{"empty env is unset", nil, realEnv(map[string]string{"CONCURRENCY": "", "LOG_LEVEL": "  "}),
			func(c Config) bool { return c.Concurrency == 16 && c.LogLevel == "info" }},
		{"values are trimmed", nil, realEnv(map[string]string{"ACCESS_TOKEN": testToken + "\n", "CONCURRENCY": " 3 "}),
			func(c Config) bool { return c.Token == testToken && c.Concurrency == 3 }},
		{"VERCEL_TOKEN", nil, map[string]string{"VERCEL_TOKEN": "t2", "INTEGRATION_CONFIG_ID": "icfg_x"},
			func(c Config) bool { return c.Token == "t2" }},
		{"ACCESS_TOKEN beats VERCEL_TOKEN", nil, realEnv(map[string]string{"VERCEL_TOKEN": "t2"}),
			func(c Config) bool { return c.Token == testToken }},
		{"token flag works, with a warning", []string{"--token", "t3"}, realEnv(nil),
			func(c Config) bool {
				return c.Token == "t3" && len(c.Warnings) == 1 && !strings.Contains(c.Warnings[0], "t3")
			}},
		{"simulate needs no token", []string{"--simulate"}, nil,
			func(c Config) bool { return c.Simulate && c.Token == "" && c.SimBuildTime == 20*time.Second }},
		{"simulate from env", nil, map[string]string{"SIMULATE": "true", "SIM_BUILD_TIME": "0s"},
			func(c Config) bool { return c.Simulate && c.SimBuildTime == 0 }},
		{"flag false beats env true", []string{"--simulate=false"}, realEnv(map[string]string{"SIMULATE": "1"}),
			func(c Config) bool { return !c.Simulate }},
		{"http off from env", nil, realEnv(map[string]string{"HTTP_ADDR": "off"}),
			func(c Config) bool { return c.HTTPAddr == "" }},
		{"http off from empty flag", []string{"--http-addr="}, realEnv(map[string]string{"HTTP_ADDR": ":9090"}),
			func(c Config) bool { return c.HTTPAddr == "" }},
		{"http any port", nil, realEnv(map[string]string{"HTTP_ADDR": ":0"}),
			func(c Config) bool { return c.HTTPAddr == ":0" }},
		{"external NATS with credentials", nil, realEnv(map[string]string{
			"NATS_URL": "nats://a:4222, tls://b:4222,c:4222", "NATS_CREDS": creds,
			"NATS_TLS_CA": ca, "NATS_TLS_CERT": cert, "NATS_TLS_KEY": key,
		}), func(c Config) bool {
			return c.NATSCreds == creds && c.NATSTLSCA == ca && c.NATSTLSCert == cert && c.NATSTLSKey == key
		}},
		{"log settings are case-insensitive", nil, realEnv(map[string]string{"LOG_FORMAT": "JSON", "LOG_LEVEL": "Debug"}),
			func(c Config) bool { return c.LogFormat == "json" && c.LogLevel == "debug" }},
		{"projects API v10", []string{"--vercel-projects-api-version=10"}, realEnv(nil),
			func(c Config) bool { return c.ProjectsAPIVersion == 10 }},
		{"durations and counts", nil, realEnv(map[string]string{
			"ACK_WAIT": "2m", "SHUTDOWN_GRACE": "1m30s", "MAX_ATTEMPTS": "10", "KEEP_FAILED_RESOURCES": "true",
		}), func(c Config) bool {
			return c.AckWait == 2*time.Minute && c.ShutdownGrace == 90*time.Second && c.MaxAttempts == 10 && c.KeepFailedResources
		}},
		{"all the rest", []string{
			"--team-id", "team_1", "--prisma-product-id", "iap_2", "--prisma-postgres-region", "fra1",
			"--prisma-billing-plan", "pro", "--vercel-api-url", "http://127.0.0.1:9999/api",
			"--embedded-nats-addr", "0.0.0.0:4333", "--data-dir", "/var/lib/deployq", "--keep-failed-resources",
		}, realEnv(nil), func(c Config) bool {
			return c.TeamID == "team_1" && c.PrismaProductID == "iap_2" && c.Region == "fra1" && c.BillingPlan == "pro" &&
				c.VercelAPIURL == "http://127.0.0.1:9999/api" && c.EmbeddedAddr == "0.0.0.0:4333" &&
				c.DataDir == "/var/lib/deployq" && c.KeepFailedResources &&
				len(c.Warnings) == 1 && strings.Contains(c.Warnings[0], "without authentication")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("unexpected config: %+v (warnings %q)", cfg, cfg.Warnings)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := tempFile(t, "f.pem")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantVar string
		want    string // the whole message, when given
	}{
		{"concurrency word", nil, realEnv(map[string]string{"CONCURRENCY": "abc"}), "CONCURRENCY",
			`CONCURRENCY (--concurrency): "abc" is not a whole number from 1 to 10000`},
		{"concurrency zero flag", []string{"--concurrency=0"}, realEnv(nil), "CONCURRENCY", ""},
		{"concurrency too high", nil, realEnv(map[string]string{"CONCURRENCY": "10001"}), "CONCURRENCY", ""},
		{"no token", nil, map[string]string{"INTEGRATION_CONFIG_ID": "icfg_a"}, "ACCESS_TOKEN (or VERCEL_TOKEN)",
			`ACCESS_TOKEN (or VERCEL_TOKEN): required unless --simulate is set`},
		{"no integration id", nil, map[string]string{"ACCESS_TOKEN": "t"}, "INTEGRATION_CONFIG_ID", ""},
		{"integration id prefix", nil, realEnv(map[string]string{"INTEGRATION_CONFIG_ID": "cfg_1"}), "INTEGRATION_CONFIG_ID",
			`INTEGRATION_CONFIG_ID (--integration-config-id): "cfg_1" does not start with "icfg_"`},
		{"creds missing", nil, realEnv(map[string]string{"NATS_URL": "nats://x:4222", "NATS_CREDS": filepath.Join(dir, "no.creds")}), "NATS_CREDS", ""},
		{"creds is a dir", nil, realEnv(map[string]string{"NATS_URL": "nats://x:4222", "NATS_CREDS": dir}), "NATS_CREDS", ""},
		{"creds without URL", nil, realEnv(map[string]string{"NATS_CREDS": file}), "NATS_CREDS", ""},
		{"CA without URL", nil, realEnv(map[string]string{"NATS_TLS_CA": file}), "NATS_TLS_CA", ""},
		{"cert without key", nil, realEnv(map[string]string{"NATS_URL": "nats://x", "NATS_TLS_CERT": file}), "NATS_TLS_KEY", ""},
		{"key without cert", nil, realEnv(map[string]string{"NATS_URL": "nats://x", "NATS_TLS_KEY": file}), "NATS_TLS_CERT", ""},
		{"CA missing", nil, realEnv(map[string]string{"NATS_URL": "nats://x", "NATS_TLS_CA": filepath.Join(dir, "ca")}), "NATS_TLS_CA", ""},
		{"NATS URL scheme", nil, realEnv(map[string]string{"NATS_URL": "http://x:4222"}), "NATS_URL", ""},
		{"NATS URL empty entry", nil, realEnv(map[string]string{"NATS_URL": "nats://a:4222,,nats://b:4222"}), "NATS_URL", ""},
		{"embedded addr", nil, realEnv(map[string]string{"EMBEDDED_NATS_ADDR": "4222"}), "EMBEDDED_NATS_ADDR", ""},
		{"embedded port 0", []string{"--embedded-nats-addr=127.0.0.1:0"}, realEnv(nil), "EMBEDDED_NATS_ADDR", ""},
		{"data dir empty flag", []string{"--data-dir="}, realEnv(nil), "DATA_DIR", ""},
		{"http addr", nil, realEnv(map[string]string{"HTTP_ADDR": "localhost"}), "HTTP_ADDR", ""},
		{"simulate bool", nil, map[string]string{"SIMULATE": "maybe"}, "SIMULATE",
			`SIMULATE (--simulate): "maybe" is not true or false`},
		{"simulate flag bool", []string{"--simulate=sure"}, nil, "SIMULATE", ""},
		{"keep bool", nil, realEnv(map[string]string{"KEEP_FAILED_RESOURCES": "yes"}), "KEEP_FAILED_RESOURCES", ""},
		{"sim build time", nil, map[string]string{"SIMULATE": "1", "SIM_BUILD_TIME": "20"}, "SIM_BUILD_TIME",
			`SIM_BUILD_TIME (--sim-build-time): "20" is not a duration such as 45s, 2m or 1m30s`},
		{"sim build time negative", []string{"--simulate", "--sim-build-time=-1s"}, nil, "SIM_BUILD_TIME", ""},
		{"ack wait short", nil, realEnv(map[string]string{"ACK_WAIT": "500ms"}), "ACK_WAIT", ""},
		{"shutdown grace", nil, realEnv(map[string]string{"SHUTDOWN_GRACE": "soon"}), "SHUTDOWN_GRACE", ""},
		{"max attempts", nil, realEnv(map[string]string{"MAX_ATTEMPTS": "0"}), "MAX_ATTEMPTS", ""},
		{"api url relative", nil, realEnv(map[string]string{"VERCEL_API_URL": "/api"}), "VERCEL_API_URL",
			`VERCEL_API_URL (--vercel-api-url): "/api" is not an absolute http or https URL`},
		{"api url scheme", []string{"--vercel-api-url", "ftp://vercel.com"}, realEnv(nil), "VERCEL_API_URL", ""},
		{"projects version", nil, realEnv(map[string]string{"VERCEL_PROJECTS_API_VERSION": "12"}), "VERCEL_PROJECTS_API_VERSION",
			`VERCEL_PROJECTS_API_VERSION (--vercel-projects-api-version): "12" is not 11 or 10`},
		{"log format", nil, realEnv(map[string]string{"LOG_FORMAT": "xml"}), "LOG_FORMAT",
			`LOG_FORMAT (--log-format): "xml" is not text or json`},
		{"log level", nil, realEnv(map[string]string{"LOG_LEVEL": "verbose"}), "LOG_LEVEL",
			`LOG_LEVEL (--log-level): "verbose" is not debug, info, warn or error`},
		{"product id empty flag", []string{"--prisma-product-id="}, realEnv(nil), "PRISMA_PRODUCT_ID", ""},
		{"region space", nil, realEnv(map[string]string{"PRISMA_POSTGRES_REGION": "us east"}), "PRISMA_POSTGRES_REGION", ""},
		{"team id space", nil, realEnv(map[string]string{"TEAM_ID": "team 1"}), "TEAM_ID", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, tt.args, tt.env)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConfigError", err)
			}
			if ce.Var != tt.wantVar {
				t.Errorf("Var = %q, want %q (%v)", ce.Var, tt.wantVar, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.wantVar) {
				t.Errorf("%q does not start with the variable %s", msg, tt.wantVar)
			}
			if ce.Flag != "" && !strings.Contains(msg, "("+ce.Flag+")") {
				t.Errorf("%q does not name the flag %s", msg, ce.Flag)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("%q spans lines", msg)
			}
			if tt.want != "" && msg != tt.want {
				t.Errorf("message\n got %s\nwant %s", msg, tt.want)
			}
		})
	}
}

// Every setting that rejects a value names its variable and its flag.
func TestConfigErrorsNameFlag(t *testing.T) {
	t.Parallel()
	for _, s := range settings() {
		// A value with spaces and a stray comma is wrong for every
		// setting that checks its value at all; the token does not.
		err := s.apply(&Config{}, "bad value,")
		if err == nil {
			continue
		}
		ce := s.configError(err.Error())
		if ce.Flag != "--"+s.flag || !strings.HasPrefix(ce.Error(), s.env[0]) {
			t.Errorf("%s: error %q", s.flag, ce)
		}
	}
}

func TestConfigFlagErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag"}, "no-such-flag"},
		{[]string{"--concurrency"}, "concurrency"},
		{[]string{"--simulate", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		_, err := load(t, tt.args, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want it to mention %q", tt.args, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %q spans lines", tt.args, err)
		}
	}
}

func TestConfigHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h"} {
		var out bytes.Buffer
		_, err := parseConfig([]string{arg}, env(nil), &out)
		if !errors.Is(err, errHelp) {
			t.Fatalf("%s: error %v, want errHelp", arg, err)
		}
		usage := out.String()
		for _, s := range settings() {
			for _, name := range s.env {
				if !strings.Contains(usage, name) {
					t.Errorf("%s: usage does not mention %s", arg, name)
				}
			}
			if !strings.Contains(usage, "--"+s.flag) {
				t.Errorf("%s: usage does not mention --%s", arg, s.flag)
			}
			if s.def != "" && !strings.Contains(usage, s.def) {
				t.Errorf("%s: usage does not show the default of --%s", arg, s.flag)
			}
		}
	}
}

// Every Config field is settable: the table covers the whole struct.
func TestConfigEveryFieldHasASetting(t *testing.T) {
	t.Parallel()
	var cfg Config
	for _, s := range settings() {
		v := s.def
		switch {
		case s.boolean:
			v = "true"
		case s.arg == "LIMITS":
			v = "all=1/1s"
		case s.arg == "PLAN":
			v = "hobby"
		case s.arg == "WEIGHTS":
			v = "vip=3"
		case s.arg == "CAPS":
			v = "trial=2"
		case s.arg == "QUOTAS":
			v = "trial=20/24h"
		case s.arg == "EXPIRY":
			v = "dry-run"
		case s.arg == "DOMAIN":
			v = "apps.example.com"
		case s.arg == "URL":
			v = "https://deployq.example.com"
		case s.arg == "KEY", s.arg == "TOKEN":
			v = "a-key-of-sixteen-characters"
		case s.arg == "COUNT":
			v = "5"
		case s.arg == "DURATION" && v == "":
			v = "5s"
		case v == "":
			v = "x"
		}
		_ = s.apply(&cfg, v) // an invalid "x" still lands in its field
	}
	rv := reflect.ValueOf(cfg)
	for i := range rv.NumField() {
		name := rv.Type().Field(i).Name
		if name == "Warnings" {
			continue
		}
		if rv.Field(i).IsZero() {
			t.Errorf("no setting writes Config.%s", name)
		}
	}
}

func TestConfigRedaction(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil, realEnv(map[string]string{
		"NATS_URL":       "nats://alice:natspass1@a:4222,nats://tok3n@b:4222,c:4222",
		"VERCEL_API_URL": "https://bob:apipass2@api.example.com",
	}))
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{testToken, "natspass1", "tok3n", "apipass2"}

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg)
	jsonCfg, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	type wrapper struct{ Cfg Config }
	outputs := map[string]string{
		"%v":         fmt.Sprintf("%v", cfg),
		"%+v":        fmt.Sprintf("%+v", cfg),
		"%#v":        fmt.Sprintf("%#v", cfg),
		"%s":         fmt.Sprintf("%s", cfg),
		"%q":         fmt.Sprintf("%q", cfg),
		"%x":         fmt.Sprintf("%x", cfg),
		"pointer":    fmt.Sprintf("%+v", &cfg),
		"nested %#v": fmt.Sprintf("%#v", wrapper{cfg}),
		"nested %+v": fmt.Sprintf("%+v", wrapper{cfg}),
		"String":     cfg.String(),
		"slog":       logged.String(),
		"json":       string(jsonCfg),
	}
	for how, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows %q: %s", how, s, out)
			}
		}
	}
	// Redaction hides secrets, not the settings around them.
	for _, want := range []string{"[REDACTED]", "alice", "a:4222", "c:4222", "api.example.com", "Concurrency:16"} {
		if !strings.Contains(outputs["%v"], want) {
			t.Errorf("%%v lacks %q: %s", want, outputs["%v"])
		}
	}
}

func TestConfigErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	tests := []map[string]string{
		{"NATS_URL": "http://u:pw9secret@x:4222"},
		{"NATS_URL": "nats://u:pw9secret@x:4222, ,"},
		{"VERCEL_API_URL": "ftp://u:pw9secret@x"},
	}
	for _, kv := range tests {
		_, err := load(t, nil, realEnv(kv))
		if err == nil {
			t.Errorf("%v: no error", kv)
			continue
		}
		if strings.Contains(err.Error(), "pw9secret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig([]string{"--simulate"}, env(nil))
	if err != nil || !cfg.Simulate {
		t.Fatalf("loadConfig: %+v, %v", cfg, err)
	}
}

func TestConfigBudgetErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ env, value string }{
		{"BUDGET", "everywhere"},
		{"BUDGET_LIMITS", "deployments.create=fast"},
		{"BUDGET_HEADROOM", "1.5"},
		{"BUDGET_MAX_PAUSE", "0s"},
		{"SIM_LIMITS", "nope=1/s"},
	} {
		_, err := load(t, nil, realEnv(map[string]string{tt.env: tt.value}))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Var != tt.env {
			t.Errorf("%s=%s: err = %v, want a ConfigError naming %s", tt.env, tt.value, err, tt.env)
		}
	}
}

func TestParseWeights(t *testing.T) {
	t.Parallel()
	got, err := parseWeights(" vip=3, trial=0.5 ,")
	if err != nil || len(got) != 2 || got["vip"] != 3 || got["trial"] != 0.5 {
		t.Fatalf("parseWeights = %v, %v", got, err)
	}
	for _, bad := range []string{"vip", "vip=", "vip=0", "vip=-1", "=2", "vip=x", "vip=5000"} {
		if _, err := parseWeights(bad); err == nil {
			t.Errorf("parseWeights(%q) accepted", bad)
		}
	}
}

func TestParseCaps(t *testing.T) {
	t.Parallel()
	got, err := parseCaps(" trial=2, bulk=8 ,")
	if err != nil || len(got) != 2 || got["trial"] != 2 || got["bulk"] != 8 {
		t.Fatalf("parseCaps = %v, %v", got, err)
	}
	for _, bad := range []string{"trial", "trial=", "trial=0", "=2", "trial=x", "trial=1.5"} {
		if _, err := parseCaps(bad); err == nil {
			t.Errorf("parseCaps(%q) accepted", bad)
		}
	}
}

func TestParseQuotas(t *testing.T) {
	t.Parallel()
	got, err := parseQuotas("trial=20/24h, bulk=300/24h+50/1h")
	if err != nil || len(got) != 2 || budget.FormatQuota(got["trial"]) != "20/24h" || budget.FormatQuota(got["bulk"]) != "50/1h+300/24h" {
		t.Fatalf("parseQuotas = %v, %v", got, err)
	}
	for _, bad := range []string{"trial", "trial=", "trial=20", "trial=0/24h", "trial=5/1h+6/1h", "=5/1h"} {
		if _, err := parseQuotas(bad); err == nil {
			t.Errorf("parseQuotas(%q) accepted", bad)
		}
	}
}
