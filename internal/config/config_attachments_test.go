package config

import (
	"strings"
	"testing"
)

func TestUploadSettings(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.MaxUploadBytes != 25<<20 || c.URLSecret != "" {
		t.Fatalf("defaults: %d %q %v", c.MaxUploadBytes, c.URLSecret, err)
	}
	secret := strings.Repeat("s", 32)
	c, err = Load(env(map[string]string{"PARLEY_MAX_UPLOAD_BYTES": "1048576", "PARLEY_URL_SECRET": secret}))
	if err != nil || c.MaxUploadBytes != 1<<20 || c.URLSecret != secret {
		t.Fatalf("values: %d %q %v", c.MaxUploadBytes, c.URLSecret, err)
	}
	for k, v := range map[string]string{
		"PARLEY_MAX_UPLOAD_BYTES": "0",
		"PARLEY_URL_SECRET":       "short",
	} {
		if _, err := Load(env(map[string]string{k: v})); err == nil {
			t.Errorf("%s=%q was accepted", k, v)
		}
	}
	if _, err := Load(env(map[string]string{"PARLEY_MAX_UPLOAD_BYTES": "25MB"})); err == nil {
		t.Error("PARLEY_MAX_UPLOAD_BYTES=25MB was accepted")
	}
}

func TestRequestSizeSetting(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.MaxRequestBytes != 1<<20 {
		t.Fatalf("default: %d %v", c.MaxRequestBytes, err)
	}
	c, err = Load(env(map[string]string{"PARLEY_MAX_REQUEST_BYTES": "4096"}))
	if err != nil || c.MaxRequestBytes != 4096 {
		t.Fatalf("value: %d %v", c.MaxRequestBytes, err)
	}
	for _, v := range []string{"0", "-1", "1MiB", "x"} {
		if _, err := Load(env(map[string]string{"PARLEY_MAX_REQUEST_BYTES": v})); err == nil || !strings.Contains(err.Error(), "PARLEY_MAX_REQUEST_BYTES") {
			t.Errorf("PARLEY_MAX_REQUEST_BYTES=%q: err %v", v, err)
		}
	}
}
