package schematype

import "strings"

// TemplateMessage is a WhatsApp template as one message sends it: the
// template's name and language, the values of its body placeholders in
// order ({{1}} first), and the header and button parameters the template
// takes. The WhatsApp adapter turns it into the Cloud API's components.
type TemplateMessage struct {
	Name       string   `json:"name"`
	Language   string   `json:"language"`
	Parameters []string `json:"parameters,omitempty"`
	// Header is the header's parameter: the value of a TEXT header's {{1}},
	// or the media of an IMAGE, VIDEO or DOCUMENT header. Nil when the
	// header has nothing to fill in.
	Header *TemplateHeaderParameter `json:"header,omitempty"`
	// Buttons are the parameters of the buttons that take one, by index.
	Buttons []TemplateButtonParameter `json:"buttons,omitempty"`
}

// TemplateHeaderParameter fills in a template's header when it is sent.
type TemplateHeaderParameter struct {
	// Format is the header's: TEXT, IMAGE, VIDEO or DOCUMENT.
	Format string `json:"format"`
	// Text is a TEXT header's {{1}}.
	Text string `json:"text,omitempty"`
	// Link is a media header's public HTTPS URL. Empty for a media header
	// means the message's one attachment, whose signed link the outbox
	// makes at send time.
	Link string `json:"link,omitempty"`
	// Filename is a DOCUMENT header's file name, shown to the customer.
	Filename string `json:"filename,omitempty"`
}

// TemplateButtonParameter fills in one button of a template: the {{1}}
// suffix of a URL button, or the payload a QUICK_REPLY button returns.
type TemplateButtonParameter struct {
	// Index is the button's position in the template, from 0.
	Index int `json:"index"`
	// Type is the button's: URL or QUICK_REPLY.
	Type  string `json:"type"`
	Value string `json:"value"`
}

// TemplateHeader is a registered template's header component: TEXT (with
// at most one {{1}} placeholder) or a media header (IMAGE, VIDEO,
// DOCUMENT) whose media each message supplies.
type TemplateHeader struct {
	Format string `json:"format"`
	Text   string `json:"text,omitempty"`
}

// Placeholders is how many parameters the header takes: 1 for a media
// header or a TEXT header with {{1}}, 0 otherwise.
func (h TemplateHeader) Placeholders() int {
	switch {
	case h.Format != "TEXT":
		return 1
	case containsPlaceholder(h.Text):
		return 1
	}
	return 0
}

// TemplateButton is one button of a registered template: QUICK_REPLY (its
// label), URL (its label and URL, which may end in a {{1}} the message
// fills in) or PHONE_NUMBER (its label and number).
type TemplateButton struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	URL         string `json:"url,omitempty"`
	PhoneNumber string `json:"phoneNumber,omitempty"`
}

// Placeholders is how many parameters the button requires: 1 for a URL
// button with a {{1}} suffix, 0 otherwise (a QUICK_REPLY payload is
// optional).
func (b TemplateButton) Placeholders() int {
	if b.Type == "URL" && containsPlaceholder(b.URL) {
		return 1
	}
	return 0
}

func containsPlaceholder(s string) bool { return strings.Contains(s, "{{1}}") }
