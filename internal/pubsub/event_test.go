package pubsub

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTopics(t *testing.T) {
	assert.Equal(t, "conv:42", ConversationTopic(42))
	assert.Equal(t, "agent:7", AgentTopic(7))
	assert.Equal(t, "visitor:42", VisitorTopic(42))
}

// TestEventWireFormat pins the JSON envelope other instances (possibly
// running another build) read.
func TestEventWireFormat(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	full, err := encode(Event{V: 1, Kind: KindConversationRemoved, ConversationID: 42, MessageID: 9, AgentIDs: []int{7, 8}, At: at})
	require.NoError(t, err)
	assert.JSONEq(t, `{"v":1,"k":"conversation.removed","c":42,"m":9,"a":[7,8],"t":"2025-01-02T03:04:05Z"}`, string(full))

	bare, err := encode(Event{V: 1, Kind: KindSessionEnded, At: at})
	require.NoError(t, err)
	assert.JSONEq(t, `{"v":1,"k":"session.ended","t":"2025-01-02T03:04:05Z"}`, string(bare), "IDs are omitted when zero")

	ev, err := decode(full)
	require.NoError(t, err)
	assert.Equal(t, Event{V: 1, Kind: KindConversationRemoved, ConversationID: 42, MessageID: 9, AgentIDs: []int{7, 8}, At: at}, ev)
}

func TestDecodeRejects(t *testing.T) {
	for name, in := range map[string]string{
		"future version":              `{"v":2,"k":"x","t":"2025-01-02T03:04:05Z"}`,
		"future version, other shape": `{"v":3,"k":{"new":"shape"}}`,
		"no version":                  `{"k":"message.added"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decode([]byte(in))
			require.ErrorIs(t, err, ErrUnsupportedVersion)
		})
	}
	for name, in := range map[string]string{
		"garbage":    `nope`,
		"wrong type": `{"v":1,"k":"message.added","c":"42"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decode([]byte(in))
			require.Error(t, err)
			require.NotErrorIs(t, err, ErrUnsupportedVersion)
			var syn *json.SyntaxError
			var typ *json.UnmarshalTypeError
			require.True(t, errors.As(err, &syn) || errors.As(err, &typ), "want a JSON error, got %v", err)
		})
	}
}

func TestPrepare(t *testing.T) {
	local := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	ev, err := prepare(Event{Kind: KindMessageAdded, At: local})
	require.NoError(t, err)
	assert.Equal(t, Version, ev.V)
	assert.Equal(t, time.UTC, ev.At.Location())
	assert.True(t, ev.At.Equal(local))
	_, err = prepare(Event{V: -1, Kind: KindMessageAdded})
	require.ErrorIs(t, err, ErrUnsupportedVersion)
}
