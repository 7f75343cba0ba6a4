package provider_test

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/graph/model"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/channels/provider"
	"github.com/parleyhq/parley/internal/channels/setup"
	"github.com/parleyhq/parley/internal/config"
)

// TestEveryChannelKindHasOneProvider walks the channel kinds: each that
// has accounts has exactly one entry, and INTERNAL none.
func TestEveryChannelKindHasOneProvider(t *testing.T) {
	for _, v := range schematype.Channel("").Values() {
		ch := schematype.Channel(v)
		t.Run(v, func(t *testing.T) {
			n := 0
			for _, f := range provider.All() {
				if f.Channel == ch {
					n++
				}
			}
			f, ok := provider.For(ch)
			if ch == schematype.ChannelInternal {
				require.Zero(t, n, "INTERNAL chats have no provider")
				require.False(t, ok)
				return
			}
			require.Equal(t, 1, n, "entries for %s", ch)
			require.True(t, ok)
			require.Equal(t, ch, f.Channel)
		})
	}
	require.Len(t, provider.All(), len(schematype.Channel("").Values())-1)
}

// TestProviderFacts checks each provider's facts against each other and
// against the GraphQL input they describe.
func TestProviderFacts(t *testing.T) {
	inputFields := map[string]bool{}
	rt := reflect.TypeFor[model.CreateChannelAccountInput]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		inputFields[name] = true
	}
	names, labels, configs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, f := range provider.All() {
		t.Run(string(f.Channel), func(t *testing.T) {
			require.NotEmpty(t, f.Label)
			require.False(t, labels[f.Label], "label %q twice", f.Label)
			labels[f.Label] = true

			require.True(t, inputFields[f.ConfigField], "CreateChannelAccountInput has no field %q", f.ConfigField)
			require.False(t, configs[f.ConfigField], "config field %q twice", f.ConfigField)
			configs[f.ConfigField] = true
			require.NotNil(t, f.Check)
			_, err := f.Check(schematype.ChannelConfig{}, true)
			if f.Channel != schematype.ChannelLiveChat {
				require.Equal(t, apperr.BadUserInput, apperr.CodeOf(err), "an empty %s config is refused", f.ConfigField)
			}

			if f.ReplyWindow > 0 {
				require.Equal(t, time.Duration(0), f.ReplyWindow%time.Hour, "the refusal names whole hours")
			}
			for _, c := range f.ThrottleCodes {
				require.True(t, f.Throttles(c))
			}
			require.False(t, f.Throttles(""))

			if f.Name == "" {
				require.Empty(t, f.WebhookPath(7))
				require.Empty(t, f.WebhookPattern())
				require.Empty(t, f.RouteLabel())
				require.Zero(t, f.Rate, "no provider API, no send rate")
				return
			}
			require.False(t, names[f.Name], "name %q twice", f.Name)
			names[f.Name] = true
			got, ok := provider.Named(f.Name)
			require.True(t, ok)
			require.Equal(t, f.Channel, got.Channel)
			require.Positive(t, f.Rate.PerSecond)
			require.Positive(t, f.Rate.Burst)

			path := f.WebhookPath(7)
			require.Equal(t, path, provider.WebhookPath(f.Channel, 7))
			require.Equal(t, f.RouteLabel()+"/7", path, "the label is the path without the id")
			mux := http.NewServeMux()
			mux.HandleFunc("POST "+f.WebhookPattern(), func(http.ResponseWriter, *http.Request) {})
			req, _ := http.NewRequest(http.MethodPost, path, nil)
			_, pattern := mux.Handler(req)
			require.Equal(t, "POST "+f.WebhookPattern(), pattern, "the path is the pattern's")
		})
	}
	_, ok := provider.Named("")
	require.False(t, ok, "an empty name is no provider's")
}

// TestMountedWebhooksAreTheProviders checks the webhook routes the
// application mounts (setup.New's adapters) against the facts: each
// provider with a webhook has its POST route, once, and nothing else is
// mounted.
func TestMountedWebhooksAreTheProviders(t *testing.T) {
	svc, err := setup.New(nil, nil, nil, nil, config.Config{}, nil, nil)
	require.NoError(t, err)
	routes := svc.Routes()

	want := map[string]bool{}
	for _, f := range provider.All() {
		if f.Name != "" {
			want[f.WebhookPattern()] = true
		}
	}
	for pattern := range routes {
		method, path, ok := strings.Cut(pattern, " ")
		require.True(t, ok, pattern)
		require.Contains(t, []string{http.MethodGet, http.MethodPost}, method, pattern)
		require.True(t, want[path], "%s is no provider's webhook", pattern)
	}
	for path := range want {
		require.Contains(t, routes, "POST "+path)
	}
	var mounted []schematype.Channel
	for pattern := range routes {
		if method, path, _ := strings.Cut(pattern, " "); method == http.MethodPost {
			name := strings.TrimSuffix(strings.TrimPrefix(path, provider.WebhookPrefix), "/{id}")
			f, ok := provider.Named(name)
			require.True(t, ok, pattern)
			mounted = append(mounted, f.Channel)
		}
	}
	slices.Sort(mounted)
	require.Len(t, slices.Compact(mounted), len(want), "one route per provider")
}
