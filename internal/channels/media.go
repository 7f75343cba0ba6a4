package channels

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/parleyhq/parley/ent"
)

// MediaStore keeps an inbound file and returns the id of its Attachment row,
// with no uploader (conversations.Receive links it to the message). A file
// the store refuses for good (its kind, its size) is a permanent
// *MediaError. internal/channels/setup implements it over the attachments
// service.
type MediaStore interface {
	Store(ctx context.Context, filename, claimedType string, r io.ReadSeeker) (attachmentID int, err error)
}

// Links gives providers signed, expiring download URLs of attachments (the
// attachments service: {PARLEY_PUBLIC_URL}/attachments/{id}/{name}?exp=&sig=).
type Links interface {
	SignedURL(a *ent.Attachment, ttl time.Duration) string
}

// Media policy. What agents and visitors upload is limited to the
// attachments allow-list (PDF, Office, text, RTF, images), judged by
// content. A customer's voice note or video on WhatsApp, Messenger or MMS
// must still reach the agent, so inbound provider media that the content
// check finds to be audio or video is kept as well, with that type; the
// download handler serves anything but images and PDF with
// Content-Disposition: attachment, nosniff and a sandbox, so such a file is
// never run or rendered as a page of ours. Anything else outside the
// allow-list (archives, executables, HTML) is not kept: the message says a
// file could not be kept instead.

// MediaType says whether a file's first bytes are audio or video, and as
// what type. The provider's claim only decides for containers the sniffer
// cannot tell apart, and only when the bytes are nothing else it knows.
func MediaType(head []byte, claimed string) (string, bool) {
	sniffed := sniff(head)
	if strings.HasPrefix(sniffed, "audio/") || strings.HasPrefix(sniffed, "video/") {
		if sniffed == "video/mp4" && strings.HasPrefix(strings.ToLower(claimed), "audio/") {
			return "audio/mp4", true // an MPEG-4 container holding sound
		}
		if sniffed == "application/ogg" {
			return "audio/ogg", true
		}
		return sniffed, true
	}
	if sniffed == "application/ogg" {
		return "audio/ogg", true
	}
	return "", false
}

// sniff extends http.DetectContentType with the containers chat apps send
// that it does not know.
func sniff(head []byte) string {
	ftyp := func(brands ...string) bool {
		if len(head) < 12 || string(head[4:8]) != "ftyp" {
			return false
		}
		for _, b := range brands {
			if strings.HasPrefix(string(head[8:12]), b) {
				return true
			}
		}
		return false
	}
	switch {
	case bytes.HasPrefix(head, []byte("#!AMR")):
		return "audio/amr"
	case ftyp("3gp", "3g2"):
		return "video/3gpp"
	case ftyp("M4A", "M4B"):
		return "audio/mp4"
	case ftyp("isom", "iso2", "mp41", "mp42", "avc1", "dash", "MSNV", "qt  "):
		return "video/mp4"
	case len(head) >= 2 && head[0] == 0xFF && (head[1]&0xF6) == 0xF0:
		return "audio/aac" // ADTS
	}
	ct := http.DetectContentType(head)
	base, _, _ := mime.ParseMediaType(ct)
	if base == "" {
		base = ct
	}
	return base
}

// digestMatches compares a SHA-256 with a provider's digest, given in hex or
// base64. A digest in neither form cannot be checked and does not fail.
func digestMatches(sum []byte, given string) bool {
	given = strings.TrimSpace(given)
	if b, err := hex.DecodeString(given); err == nil && len(b) == sha256.Size {
		return bytes.Equal(b, sum)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(given); err == nil && len(b) == sha256.Size {
			return bytes.Equal(b, sum)
		}
	}
	return true
}

var extensions = map[string]string{
	"video/mp4": "mp4", "video/3gpp": "3gp", "video/webm": "webm", "video/avi": "avi",
	"audio/ogg": "ogg", "audio/mpeg": "mp3", "audio/amr": "amr", "audio/aac": "aac", "audio/mp4": "m4a",
	"audio/wave": "wav", "audio/aiff": "aiff", "audio/midi": "mid", "audio/basic": "au",
}

// MediaExtension is the usual file extension (without the dot) of an audio
// or video type MediaType returns; "bin" for one it does not know.
func MediaExtension(ct string) string {
	if e := extensions[ct]; e != "" {
		return e
	}
	return "bin"
}
