package apitest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// rawConfig reads a channel account's config column as the database holds
// it, past ent and the services.
func rawConfig(t *testing.T, db *store.DB, id string) (string, schematype.ChannelConfig) {
	t.Helper()
	var s string
	q := fmt.Sprintf("SELECT config FROM channel_accounts WHERE id = %d", apitest.Atoi(t, id))
	if err := db.SQL.QueryRowContext(context.Background(), q).Scan(&s); err != nil {
		t.Fatal(err)
	}
	var cfg schematype.ChannelConfig
	if err := json.Unmarshal([]byte(s), &cfg); err != nil {
		t.Fatal(err)
	}
	return s, cfg
}

// requireSealed fails unless no credential is in the row in clear and each
// one given is sealed with the key keyID.
func requireSealed(t *testing.T, db *store.DB, id, keyID string, clear ...string) {
	t.Helper()
	row, cfg := rawConfig(t, db, id)
	for _, c := range clear {
		if strings.Contains(row, c) {
			t.Fatalf("account %s: %q is stored in clear: %s", id, c, row)
		}
	}
	n := 0
	for _, f := range cfg.Secrets() {
		if *f == "" {
			continue
		}
		n++
		if !strings.HasPrefix(*f, "v1:"+keyID+":") {
			t.Fatalf("account %s: a credential is not sealed with key %s: %s", id, keyID, row)
		}
	}
	if n != len(clear) {
		t.Fatalf("account %s: %d sealed credentials, want %d: %s", id, n, len(clear), row)
	}
}

// TestCredentialsAtRest: credentials given to CreateChannelAccount are
// stored sealed (the raw row holds none of them), are never answered back
// through the API, and the adapters still work with them: the handshake
// checks the verify token, the webhook signature the app secret, and a
// reply reaches the provider with the access token.
func TestCredentialsAtRest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s, w := startChannels(t, b)
		db, keyID := s.App.DB, s.App.Secrets.CurrentID()
		api := newProvider(t)
		wa, hook := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242922", "accessToken": "EAAG-at-rest-token", "appSecret": "meta-at-rest-secret",
			"verifyToken": "at-rest-verify", "apiBaseURL": api.URL(),
		})
		fb, _ := createAccount(t, w, "FACEBOOK", "messenger", map[string]any{
			"pageID": "555000111", "pageAccessToken": "EAAP-at-rest-page-token", "appSecret": "fb-at-rest-secret",
			"verifyToken": "fb-at-rest-verify", "apiBaseURL": api.URL(),
		})
		sms, _ := createAccount(t, w, "SMS", "sms", map[string]any{
			"accountSID": "AC00000000000000000000000000000042", "authToken": "twilio-at-rest-token",
			"fromNumber": "+14155550142", "apiBaseURL": api.URL(),
		})
		requireSealed(t, db, wa, keyID, "EAAG-at-rest-token", "meta-at-rest-secret", "at-rest-verify")
		requireSealed(t, db, fb, keyID, "EAAP-at-rest-page-token", "fb-at-rest-secret", "fb-at-rest-verify")
		requireSealed(t, db, sms, keyID, "twilio-at-rest-token")
		// What is not a credential stays readable, for routing and admins.
		if row, cfg := rawConfig(t, db, sms); cfg.FromNumber != "+14155550142" || cfg.AccountSID == "" {
			t.Fatalf("non-secret fields: %s", row)
		}

		r := w.Admin.C.Query(t, `{ channelAccounts { id channel name webhookURL snippet phoneNumberID pageID fromNumber apiBaseURL allowedOrigins } }`, nil)
		if len(r.Errors) > 0 {
			t.Fatalf("channelAccounts: %s", r.Raw)
		}
		for _, c := range []string{"at-rest", "v1:"} {
			if strings.Contains(string(r.Raw), c) {
				t.Fatalf("channelAccounts answers a credential (%q): %s", c, r.Raw)
			}
		}

		if code, body := handshake(t, hook, "at-rest-verify"); code != 200 || body != "8675309" {
			t.Fatalf("handshake: %d %q", code, body)
		}
		deliverMeta(t, hook, "meta-at-rest-secret", mustMarshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
			"id": "1", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
				"messaging_product": "whatsapp",
				"metadata":          map[string]any{"phone_number_id": "106540352242922"},
				"contacts":          []any{map[string]any{"wa_id": "34600111222", "profile": map[string]any{"name": "Lucía"}}},
				"messages": []any{map[string]any{"from": "34600111222", "id": "wamid.REST1", "timestamp": fmt.Sprint(time.Now().Unix()),
					"type": "text", "text": map[string]any{"body": "Hola"}}},
			}}},
		}}}))
		conv := waitConversation(t, w.Ana, "WHATSAPP")
		reply(t, w.Ana, conv, "Hola, Lucía")
		if got := api.waitSends(1)[0].Header.Get("Authorization"); got != "Bearer EAAG-at-rest-token" {
			t.Fatalf("the provider got Authorization %q", got)
		}
	})
}

func hexKey(t *testing.T) (string, string) {
	t.Helper()
	raw := make([]byte, secrets.KeySize)
	_, _ = rand.Read(raw)
	k, err := secrets.ParseKey(hex.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(raw), k.ID()
}

// TestCredentialKeyRotation: accounts sealed with a key stay usable when it
// becomes the old key beside a new one; after resealing (what `parley
// reencrypt-secrets` runs) they are sealed with the new key and usable with
// it alone, and the old key alone no longer opens them.
func TestCredentialKeyRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		oldKey, oldID := hexKey(t)
		newKey, newID := hexKey(t)
		start := func(env map[string]string) *apitest.Server {
			return apitest.Start(t, apitest.Options{Backend: b, DB: db, Env: env, NoWorkers: true})
		}
		s1 := start(map[string]string{"PARLEY_SECRET_KEY": oldKey})
		w := apitest.NewWorkspace(t, s1, apitest.WorkspaceOption{})
		acct, _ := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242999", "accessToken": "EAAG-rotated", "appSecret": "rotated-secret", "verifyToken": "rotated-verify",
		})
		requireSealed(t, db, acct, oldID, "EAAG-rotated", "rotated-secret", "rotated-verify")
		_ = s1.Stop()

		handshakeOn := func(s *apitest.Server) int {
			code, _ := handshake(t, s.URL+"/webhooks/whatsapp/"+acct, "rotated-verify")
			return code
		}
		s2 := start(map[string]string{"PARLEY_SECRET_KEY": newKey, "PARLEY_SECRET_KEY_OLD": oldKey})
		if code := handshakeOn(s2); code != 200 {
			t.Fatalf("with the old key beside the new one, the handshake answers %d", code)
		}
		resealed, total, err := s2.App.Workspace.ResealCredentials(context.Background())
		if err != nil || resealed < 2 || resealed != total-1 { // every account but the live chat's
			t.Fatalf("resealed %d of %d: %v", resealed, total, err)
		}
		requireSealed(t, db, acct, newID, "EAAG-rotated", "rotated-secret", "rotated-verify")
		_ = s2.Stop()

		if code := handshakeOn(start(map[string]string{"PARLEY_SECRET_KEY": newKey})); code != 200 {
			t.Fatalf("with the new key alone, the handshake answers %d", code)
		}
		if code := handshakeOn(start(map[string]string{"PARLEY_SECRET_KEY": oldKey})); code != 503 {
			t.Fatalf("with the old key alone, the handshake answers %d, want 503", code)
		}
	})
}
