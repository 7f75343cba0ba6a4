package channels_test

import (
	"encoding/json"
	"net/url"
	"strconv"
	"time"
)

// Webhook bodies in the providers' formats (see ../shared/channels.md),
// built per test.

const (
	waPhone = "106540352242922"
	fbPage  = "112233445566778"
	twFrom  = "+14155550100"
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func waEnvelope(phoneID string, value map[string]any) []byte {
	value["messaging_product"] = "whatsapp"
	value["metadata"] = map[string]any{"display_phone_number": "15550783881", "phone_number_id": phoneID}
	return mustJSON(map[string]any{"object": "whatsapp_business_account", "entry": []any{
		map[string]any{"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": value}}},
	}})
}

func waMessage(phoneID, from, name string, msg map[string]any) []byte {
	msg["from"] = from
	if _, ok := msg["timestamp"]; !ok {
		msg["timestamp"] = strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	}
	return waEnvelope(phoneID, map[string]any{
		"contacts": []any{map[string]any{"wa_id": from, "profile": map[string]any{"name": name}}},
		"messages": []any{msg},
	})
}

func waText(id, from, body string) []byte {
	return waMessage(waPhone, from, "Lucía", map[string]any{"id": id, "type": "text", "text": map[string]any{"body": body}})
}

func waMedia(id, from, kind, mediaID, mime, sum, caption string) []byte {
	obj := map[string]any{"id": mediaID, "mime_type": mime, "sha256": sum}
	if caption != "" {
		obj["caption"] = caption
	}
	if kind == "audio" {
		obj["voice"] = true
	}
	return waMessage(waPhone, from, "Lucía", map[string]any{"id": id, "type": kind, kind: obj})
}

func waStatus(id, st string, at time.Time, errs ...map[string]any) []byte {
	s := map[string]any{"id": id, "status": st, "timestamp": strconv.FormatInt(at.Unix(), 10), "recipient_id": "34600111222"}
	if len(errs) > 0 {
		s["errors"] = errs
	}
	return waEnvelope(waPhone, map[string]any{"statuses": []any{s}})
}

func fbEnvelope(events ...map[string]any) []byte {
	ev := make([]any, len(events))
	for i, e := range events {
		ev[i] = e
	}
	return mustJSON(map[string]any{"object": "page", "entry": []any{
		map[string]any{"id": fbPage, "time": time.Now().UnixMilli(), "messaging": ev},
	}})
}

func fbEvent(psid string, kv map[string]any) map[string]any {
	kv["sender"] = map[string]any{"id": psid}
	kv["recipient"] = map[string]any{"id": fbPage}
	if _, ok := kv["timestamp"]; !ok {
		kv["timestamp"] = time.Now().Add(-time.Second).UnixMilli()
	}
	return kv
}

func fbText(mid, psid, text string) []byte {
	return fbEnvelope(fbEvent(psid, map[string]any{"message": map[string]any{"mid": mid, "text": text}}))
}

func fbAttachment(mid, psid, kind, link string) []byte {
	return fbEnvelope(fbEvent(psid, map[string]any{"message": map[string]any{"mid": mid, "attachments": []any{
		map[string]any{"type": kind, "payload": map[string]any{"url": link}},
	}}}))
}

func fbEcho(mid, psid, text string) []byte {
	return fbEnvelope(map[string]any{"sender": map[string]any{"id": fbPage}, "recipient": map[string]any{"id": psid},
		"timestamp": time.Now().UnixMilli(), "message": map[string]any{"mid": mid, "text": text, "is_echo": true, "app_id": 1}})
}

func fbDelivery(psid string, watermark time.Time, mids ...string) []byte {
	d := map[string]any{"watermark": watermark.UnixMilli()}
	if len(mids) > 0 {
		d["mids"] = mids
	}
	return fbEnvelope(fbEvent(psid, map[string]any{"delivery": d}))
}

func fbRead(psid string, watermark time.Time) []byte {
	return fbEnvelope(fbEvent(psid, map[string]any{"read": map[string]any{"watermark": watermark.UnixMilli()}}))
}

func twInbound(sid, from, body string, media ...[2]string) url.Values {
	v := url.Values{
		"MessageSid": {sid}, "SmsMessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {"AC00000000000000000000000000000001"},
		"From": {from}, "To": {twFrom}, "Body": {body}, "NumMedia": {strconv.Itoa(len(media))}, "NumSegments": {"1"},
		"SmsStatus": {"received"}, "FromCountry": {"US"}, "ApiVersion": {"2010-04-01"},
	}
	for i, m := range media {
		v.Set("MediaUrl"+strconv.Itoa(i), m[0])
		v.Set("MediaContentType"+strconv.Itoa(i), m[1])
	}
	return v
}

func twStatus(sid, st, code string) url.Values {
	v := url.Values{"MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {st}, "SmsStatus": {st},
		"AccountSid": {"AC00000000000000000000000000000001"}, "From": {twFrom}, "To": {"+14155550199"}, "ApiVersion": {"2010-04-01"}}
	if code != "" {
		v.Set("ErrorCode", code)
	}
	return v
}
