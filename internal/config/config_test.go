package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.DatabaseURL != "" || c.RedisURL != "" || c.Demo || c.TokenTTL != 720*time.Hour {
		t.Fatalf("defaults: %+v", c)
	}
	if c.PublicURL != "http://localhost:8080" {
		t.Fatalf("public URL %q", c.PublicURL)
	}
	if !filepath.IsAbs(c.DataDir) || filepath.Base(c.DataDir) != "data" || filepath.Base(c.SQLitePath()) != "parley.db" {
		t.Fatalf("data dir %q", c.DataDir)
	}
}

func TestValues(t *testing.T) {
	c, err := Load(env(map[string]string{
		"PARLEY_ADDR": "127.0.0.1:9000", "PARLEY_PUBLIC_URL": "https://chat.example.com/",
		"PARLEY_DEMO": "1", "PARLEY_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7",
		"PARLEY_ALLOWED_ORIGINS": "https://a.example.com, https://b.example.com",
		"PARLEY_ADMIN_EMAIL":     "root@example.com", "PARLEY_ADMIN_PASSWORD": "x",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "https://chat.example.com" || !c.Demo || len(c.TrustedProxies) != 2 || len(c.AllowedOrigins) != 2 {
		t.Fatalf("values: %+v", c)
	}
	if c.TrustedProxies[1].String() != "192.168.1.7/32" {
		t.Fatalf("single address proxy: %v", c.TrustedProxies[1])
	}
}

func TestBadValues(t *testing.T) {
	for _, m := range []map[string]string{
		{"PARLEY_DEMO": "maybe"},
		{"PARLEY_TRUSTED_PROXIES": "10.0.0.0/99"},
		{"PARLEY_TRUSTED_PROXIES": "not-an-ip"},
		{"PARLEY_TOKEN_TTL": "-1h"},
		{"PARLEY_ADMIN_EMAIL": "root@example.com"},
	} {
		if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), "PARLEY_") {
			t.Fatalf("%v: want an error naming the variable, got %v", m, err)
		}
	}
}

func TestGraphAPIVersion(t *testing.T) {
	c, err := Load(env(map[string]string{"PARLEY_GRAPH_API_VERSION": "v22.0"}))
	if err != nil || c.GraphAPIVersion != "v22.0" {
		t.Fatalf("version: %q %v", c.GraphAPIVersion, err)
	}
	if c, _ := Load(env(nil)); c.GraphAPIVersion != "v21.0" {
		t.Fatalf("default version %q", c.GraphAPIVersion)
	}
	if _, err := Load(env(map[string]string{"PARLEY_GRAPH_API_VERSION": "latest"})); err == nil {
		t.Fatal("a bad version was accepted")
	}
}

// TestSecretKeys: PARLEY_SECRET_KEY and PARLEY_SECRET_KEY_OLD take 32-byte
// keys in hex or base64; anything else is a configuration error that names
// the variable and never repeats the value.
func TestSecretKeys(t *testing.T) {
	hexKey := strings.Repeat("ab", 32)
	b64Key := "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k="
	c, err := Load(env(map[string]string{"PARLEY_SECRET_KEY": hexKey, "PARLEY_SECRET_KEY_OLD": b64Key + ", " + hexKey}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretKey == nil || len(c.OldSecretKeys) != 2 || c.OldSecretKeys[1].ID() != c.SecretKey.ID() || c.OldSecretKeys[0].ID() == c.SecretKey.ID() {
		t.Fatalf("keys: %v %v", c.SecretKey, c.OldSecretKeys)
	}
	if strings.Contains(fmt.Sprintf("%+v %#v", c, c), "abab") {
		t.Fatal("a printed configuration shows the key")
	}
	if c, _ := Load(env(nil)); c.SecretKey != nil || c.OldSecretKeys != nil {
		t.Fatal("keys without configuration")
	}
	for _, tc := range []struct{ name, v, value string }{
		{"PARLEY_SECRET_KEY", "PARLEY_SECRET_KEY", "a-password-not-a-key"},
		{"short", "PARLEY_SECRET_KEY", strings.Repeat("ab", 16)},
		{"old", "PARLEY_SECRET_KEY_OLD", hexKey + ",tooshort"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(map[string]string{tc.v: tc.value}))
			if err == nil || !strings.Contains(err.Error(), tc.v) || !strings.Contains(err.Error(), "32 bytes") {
				t.Fatalf("want an error naming %s, got %v", tc.v, err)
			}
			if strings.Contains(err.Error(), "a-password") || strings.Contains(err.Error(), "tooshort") || strings.Contains(err.Error(), "abab") {
				t.Fatalf("the error repeats the value: %v", err)
			}
		})
	}
}

func TestMetricsAddr(t *testing.T) {
	c, err := Load(env(map[string]string{"PARLEY_METRICS_ADDR": "127.0.0.1:9090"}))
	if err != nil || c.MetricsAddr != "127.0.0.1:9090" {
		t.Fatalf("metrics addr %q %v", c.MetricsAddr, err)
	}
	for _, v := range []string{"9090", ":8080"} {
		if _, err := Load(env(map[string]string{"PARLEY_METRICS_ADDR": v})); err == nil || !strings.Contains(err.Error(), "PARLEY_METRICS_ADDR") {
			t.Fatalf("%q: %v", v, err)
		}
	}
}
