package schematype

// ChatOptions are an agent's personal chat preferences ("Options > Chat"):
// whether the chat indicator shows, whether web notifications pop up, and
// which sound plays on a new message. Stored as one JSON column because they
// are always read and written together.
type ChatOptions struct {
	ShowChatIndicator bool   `json:"showChatIndicator"`
	WebNotifications  bool   `json:"webNotifications"`
	PlaySound         bool   `json:"playSound"`
	NotificationSound string `json:"notificationSound"`
}

// DefaultChatOptions are what a new agent starts with.
func DefaultChatOptions() ChatOptions {
	return ChatOptions{ShowChatIndicator: true, WebNotifications: true, PlaySound: true, NotificationSound: "default"}
}

// ChannelConfig holds a channel account's provider settings, credentials
// included. It is stored as JSON with the credentials sealed (see Secrets),
// never exposed through GraphQL, and never logged: only the non-secret parts
// are surfaced by dedicated resolvers.
type ChannelConfig struct {
	// WhatsApp Cloud API.
	PhoneNumberID string `json:"phoneNumberID,omitempty"`
	AccessToken   string `json:"accessToken,omitempty"`
	// Messenger.
	PageID          string `json:"pageID,omitempty"`
	PageAccessToken string `json:"pageAccessToken,omitempty"`
	// WhatsApp and Messenger share the webhook signature and handshake.
	AppSecret   string `json:"appSecret,omitempty"`
	VerifyToken string `json:"verifyToken,omitempty"`
	// Twilio SMS/MMS.
	AccountSID string `json:"accountSID,omitempty"`
	AuthToken  string `json:"authToken,omitempty"`
	FromNumber string `json:"fromNumber,omitempty"`
	// APIBaseURL replaces the provider's scheme and host (a proxy or a test
	// double); empty means the provider's real API.
	APIBaseURL string `json:"apiBaseURL,omitempty"`
	// Live chat.
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
	// BusinessAccountID is the WhatsApp Business Account (WABA) id, whose
	// message templates syncWhatsAppTemplates lists; optional.
	BusinessAccountID string `json:"businessAccountID,omitempty"`
	// HumanAgentTag lets a Messenger page answer for 7 days after the
	// customer's last message with the HUMAN_AGENT tag (the app must be
	// approved for it at Meta).
	HumanAgentTag bool `json:"humanAgentTag,omitempty"`
}

// Secrets points at the credentials among the fields: what is sealed at
// rest (internal/secrets, by the workspace service that stores accounts) and
// opened only for the channel adapters. A new credential field belongs here,
// or it is stored in clear.
func (c *ChannelConfig) Secrets() []*string {
	return []*string{&c.AccessToken, &c.PageAccessToken, &c.AppSecret, &c.VerifyToken, &c.AuthToken}
}

// String never prints credentials, so a config that reaches a log by
// accident leaks nothing.
func (ChannelConfig) String() string { return "ChannelConfig{redacted}" }
