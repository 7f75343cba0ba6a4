// Package config reads Parley's configuration from the environment. Every
// setting has a default that makes `parley serve` work with nothing set: an
// SQLite file under ./data and in-process pub/sub.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/secrets"
)

// Config is the whole runtime configuration.
type Config struct {
	// Addr is the listen address (PARLEY_ADDR, default ":8080").
	Addr string
	// DataDir holds the SQLite file and attachments (PARLEY_DATA_DIR, "./data").
	DataDir string
	// DatabaseURL selects PostgreSQL when set (DATABASE_URL); empty = SQLite.
	DatabaseURL string
	// RedisURL selects Redis pub/sub when set (REDIS_URL); empty = in-process.
	RedisURL string
	// PublicURL is the externally visible base URL (PARLEY_PUBLIC_URL),
	// used for webhook URLs and provider signature checks.
	PublicURL string
	// AdminEmail and AdminPassword create the first SYSTEM_OWNER on an
	// empty database (PARLEY_ADMIN_EMAIL, PARLEY_ADMIN_PASSWORD).
	AdminEmail    string
	AdminPassword string
	// Demo seeds a demo workspace on an empty database (PARLEY_DEMO).
	Demo bool
	// TrustedProxies are the peers whose X-Forwarded-For is believed
	// (PARLEY_TRUSTED_PROXIES, comma-separated CIDRs; empty = none).
	TrustedProxies []netip.Prefix
	// AllowedOrigins may call the API from a browser and open websockets
	// (PARLEY_ALLOWED_ORIGINS, comma-separated; empty = same origin only).
	AllowedOrigins []string
	// TokenTTL is how long a login token lives (PARLEY_TOKEN_TTL, 720h).
	TokenTTL time.Duration
	// LogLevel is debug, info, warn or error (PARLEY_LOG_LEVEL, info).
	LogLevel string
	// GraphAPIVersion is the Graph API version in WhatsApp and Messenger
	// request paths (PARLEY_GRAPH_API_VERSION, v21.0).
	GraphAPIVersion string
	// MaxUploadBytes is the largest attachment accepted
	// (PARLEY_MAX_UPLOAD_BYTES, 25 MiB).
	MaxUploadBytes int64
	// PresenceGrace is how long an agent counts as online after their last
	// request or websocket (PARLEY_PRESENCE_GRACE, 2m).
	PresenceGrace time.Duration
	// EventRetention is how long realtime events are kept for clients that
	// resume (PARLEY_EVENT_RETENTION, 24h).
	EventRetention time.Duration
	// EventPollInterval is how often the event log is checked for events
	// that were committed but never published, e.g. by a process that died
	// in between (PARLEY_EVENT_POLL_INTERVAL, 1s).
	EventPollInterval time.Duration
	// WebsocketInitTimeout is how long a websocket has to send
	// connection_init (PARLEY_WS_INIT_TIMEOUT, 10s).
	WebsocketInitTimeout time.Duration
	// WebsocketPingInterval is how often idle websockets are pinged
	// (PARLEY_WS_PING_INTERVAL, 20s); silent for two intervals, one is dropped.
	WebsocketPingInterval time.Duration
	// WebsocketRecheckInterval is how often the tokens of open websockets
	// are checked again, so that a revoked one closes its sockets
	// (PARLEY_WS_RECHECK_INTERVAL, 5s).
	WebsocketRecheckInterval time.Duration
	// MaxRequestBytes bounds a GraphQL request body other than a multipart
	// upload (PARLEY_MAX_REQUEST_BYTES, 1 MiB); a larger one is refused
	// with 413 before it is read whole.
	MaxRequestBytes int64
	// URLSecret keys the signed download links of attachments
	// (PARLEY_URL_SECRET); empty = a random secret kept in the data
	// directory, which instances that do not share it cannot check.
	URLSecret string
	// SecretKey seals provider credentials at rest (PARLEY_SECRET_KEY, 32
	// bytes in hex or base64); nil = a key generated into the data
	// directory, which instances that do not share it cannot open.
	SecretKey *secrets.Key
	// OldSecretKeys still open credentials sealed before a rotation
	// (PARLEY_SECRET_KEY_OLD, comma-separated); `parley reencrypt-secrets`
	// reseals them with the current key, after which they can go.
	OldSecretKeys []secrets.Key
	// MetricsAddr, when set, serves /metrics on an address of its own
	// instead of the main listener (PARLEY_METRICS_ADDR), so that metrics
	// need not be public.
	MetricsAddr string
}

// FromEnv reads the configuration from the process environment.
func FromEnv() (Config, error) { return Load(os.Getenv) }

// Load reads the configuration through getenv, so tests can supply their own.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		Addr:          or(getenv("PARLEY_ADDR"), ":8080"),
		DataDir:       or(getenv("PARLEY_DATA_DIR"), "./data"),
		DatabaseURL:   getenv("DATABASE_URL"),
		RedisURL:      getenv("REDIS_URL"),
		PublicURL:     strings.TrimRight(getenv("PARLEY_PUBLIC_URL"), "/"),
		AdminEmail:    strings.TrimSpace(getenv("PARLEY_ADMIN_EMAIL")),
		AdminPassword: getenv("PARLEY_ADMIN_PASSWORD"),
		LogLevel:      or(getenv("PARLEY_LOG_LEVEL"), "info"),
		TokenTTL:      30 * 24 * time.Hour,
	}
	c.GraphAPIVersion = or(getenv("PARLEY_GRAPH_API_VERSION"), "v21.0")
	if !graphVersion.MatchString(c.GraphAPIVersion) {
		return c, fmt.Errorf("PARLEY_GRAPH_API_VERSION: %q is not a version such as v21.0", c.GraphAPIVersion)
	}
	c.URLSecret = getenv("PARLEY_URL_SECRET")
	var err error
	if c.MaxUploadBytes, err = bytesSetting(getenv, "PARLEY_MAX_UPLOAD_BYTES", 25<<20); err != nil {
		return c, err
	}
	if c.MaxRequestBytes, err = bytesSetting(getenv, "PARLEY_MAX_REQUEST_BYTES", 1<<20); err != nil {
		return c, err
	}
	if c.URLSecret != "" && len(c.URLSecret) < 32 {
		return c, fmt.Errorf("PARLEY_URL_SECRET must have at least 32 characters")
	}
	if v := getenv("PARLEY_SECRET_KEY"); v != "" {
		k, err := secrets.ParseKey(v)
		if err != nil {
			return c, fmt.Errorf("PARLEY_SECRET_KEY: %w", err)
		}
		c.SecretKey = &k
	}
	for i, v := range split(getenv("PARLEY_SECRET_KEY_OLD")) {
		k, err := secrets.ParseKey(v)
		if err != nil {
			return c, fmt.Errorf("PARLEY_SECRET_KEY_OLD (key %d): %w", i+1, err)
		}
		c.OldSecretKeys = append(c.OldSecretKeys, k)
	}
	if c.MetricsAddr = getenv("PARLEY_METRICS_ADDR"); c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return c, fmt.Errorf("PARLEY_METRICS_ADDR: %q is not an address such as 127.0.0.1:9090", c.MetricsAddr)
		}
		if c.MetricsAddr == c.Addr {
			return c, fmt.Errorf("PARLEY_METRICS_ADDR must differ from PARLEY_ADDR")
		}
	}
	if v := getenv("PARLEY_DEMO"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("PARLEY_DEMO: %q is not a boolean", v)
		}
		c.Demo = b
	}
	if v := getenv("PARLEY_TOKEN_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("PARLEY_TOKEN_TTL: %q is not a positive duration", v)
		}
		c.TokenTTL = d
	}
	for _, s := range split(getenv("PARLEY_TRUSTED_PROXIES")) {
		p, err := parsePrefix(s)
		if err != nil {
			return c, fmt.Errorf("PARLEY_TRUSTED_PROXIES: %w", err)
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	c.AllowedOrigins = split(getenv("PARLEY_ALLOWED_ORIGINS"))
	for _, d := range []struct {
		name string
		into *time.Duration
		def  time.Duration
	}{
		{"PARLEY_WS_INIT_TIMEOUT", &c.WebsocketInitTimeout, 10 * time.Second},
		{"PARLEY_WS_PING_INTERVAL", &c.WebsocketPingInterval, 20 * time.Second},
		{"PARLEY_WS_RECHECK_INTERVAL", &c.WebsocketRecheckInterval, 5 * time.Second},
		{"PARLEY_EVENT_RETENTION", &c.EventRetention, 24 * time.Hour},
		{"PARLEY_PRESENCE_GRACE", &c.PresenceGrace, 2 * time.Minute},
		{"PARLEY_EVENT_POLL_INTERVAL", &c.EventPollInterval, time.Second},
	} {
		*d.into = d.def
		if v := getenv(d.name); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil || parsed <= 0 {
				return c, fmt.Errorf("%s: %q is not a positive duration", d.name, v)
			}
			*d.into = parsed
		}
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + localHost(c.Addr)
	}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		return c, fmt.Errorf("PARLEY_ADMIN_EMAIL and PARLEY_ADMIN_PASSWORD go together")
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return c, fmt.Errorf("PARLEY_DATA_DIR: %w", err)
	}
	c.DataDir = abs
	return c, nil
}

// bytesSetting reads a positive number of bytes from the variable name, or
// def when it is not set.
func bytesSetting(getenv func(string) string, name string, def int64) (int64, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return def, fmt.Errorf("%s: %q is not a positive number of bytes", name, v)
	}
	return n, nil
}

var graphVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)

// SQLitePath is where the embedded database lives.
func (c Config) SQLitePath() string { return filepath.Join(c.DataDir, "parley.db") }

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not a CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func localHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "localhost:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func split(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
