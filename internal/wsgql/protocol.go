package wsgql

import (
	"encoding/json"
	"strconv"
)

// clientMessage is a message of either protocol from the client.
type clientMessage struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// Messages that never change, encoded once.
var (
	msgAck       = []byte(`{"type":"connection_ack"}`)
	msgKeepAlive = []byte(`{"type":"ka"}`)
	msgTail      = []byte(`}`)
)

// resultType is the type of a result message: next, or data in the legacy
// protocol.
func resultType(proto string) string {
	if proto == ProtocolLegacyWS {
		return "data"
	}
	return "next"
}

// messagePrefix is a message up to its payload: the part of a result that
// differs between the sockets sharing it.
func messagePrefix(proto, id, typ string) []byte {
	b := make([]byte, 0, len(id)+40)
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, id) // ids are client strings: quote them as JSON
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	b = append(b, `","payload":`...)
	return b
}

// encodeMessage encodes a whole message; id and payload are left out when
// empty.
func encodeMessage(id, typ string, payload []byte) []byte {
	m := struct {
		ID      string          `json:"id,omitempty"`
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload,omitempty"`
	}{id, typ, payload}
	b, _ := json.Marshal(m)
	return b
}

// pongMessage answers a protocol ping, echoing its payload.
func pongMessage(payload json.RawMessage) []byte {
	if len(payload) == 0 || string(payload) == "null" {
		return []byte(`{"type":"pong"}`)
	}
	return encodeMessage("", "pong", payload)
}

func errorObject(msg string) []byte { return mustJSON(map[string]string{"message": msg}) }

func errorList(msg string) []byte { return mustJSON([]map[string]string{{"message": msg}}) }

// mustJSON encodes v; what cannot be encoded becomes an internal error
// result rather than a broken frame.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}`)
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
