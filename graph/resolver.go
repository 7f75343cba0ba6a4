package graph

import (
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/graph/model"
	"github.com/parleyhq/parley/internal/attachments"
	"github.com/parleyhq/parley/internal/audit"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/contacts"
	"github.com/parleyhq/parley/internal/conversations"
	"github.com/parleyhq/parley/internal/labels"
	"github.com/parleyhq/parley/internal/livechat"
	"github.com/parleyhq/parley/internal/nodes"
	"github.com/parleyhq/parley/internal/presence"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/templates"
	"github.com/parleyhq/parley/internal/workspace"
)

// Resolver is the root of the resolvers. It holds the services; resolvers
// stay thin: caller from the context, one service call, return.
type Resolver struct {
	Auth      *auth.Service
	Workspace *workspace.Service
	Lookup    *nodes.Service
	Templates *templates.Service
	Contacts  *contacts.Service
	// Conversations runs the workflow: inbox, ownership, realtime.
	Conversations *conversations.Service
	// Presence says who is online and streams presence changes.
	Presence *presence.Service
	// LiveChat is the website visitors' API.
	LiveChat *livechat.Service
	// Attachments stores uploads and signs their download links.
	Attachments *attachments.Service
	// Audit lists administrative changes.
	Audit *audit.Service
	// Channels holds the WhatsApp accounts' message templates.
	Channels *channels.Service
	// Labels manages the workspace's labels and loads conversations'.
	Labels *labels.Service
	// QueueLive streams queues' live figures (queueEvents).
	QueueLive *QueueLiveHub
	// Stats computes queue statistics.
	Stats *stats.Service
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func queueInput(name *string, strategy *schematype.PollingStrategy, timeout, ownerAway *int, description *string, serviceLevel *int, members []*model.QueueMemberInput) workspace.QueueInput {
	in := workspace.QueueInput{Name: name, Strategy: strategy, OfferTimeoutSeconds: timeout, OwnerAwayTimeoutSeconds: ownerAway, Description: description, ServiceLevelSeconds: serviceLevel, MembersSet: members != nil}
	for _, m := range members {
		in.Members = append(in.Members, workspace.Member{AgentID: m.AgentID, Priority: m.Priority})
	}
	return in
}

func channelAccountInput(in model.CreateChannelAccountInput) workspace.NewChannelAccount {
	out := workspace.NewChannelAccount{Channel: in.Channel, Name: in.Name, QueueID: in.QueueID, AgentID: in.AgentID, FallbackQueueID: in.FallbackQueueID}
	p := providerConfig(in.Whatsapp, in.Messenger, in.Sms, in.LiveChat)
	out.Config, out.GivenWhatsApp, out.GivenMessenger, out.GivenSMS, out.GivenLiveChat =
		p.Config, p.GivenWhatsApp, p.GivenMessenger, p.GivenSMS, p.GivenLiveChat
	return out
}

func channelAccountUpdate(in model.UpdateChannelAccountInput) workspace.ChannelAccountUpdate {
	return workspace.ChannelAccountUpdate{
		Name: in.Name, QueueID: in.QueueID, AgentID: in.AgentID, FallbackQueueID: in.FallbackQueueID,
		Provider: providerConfig(in.Whatsapp, in.Messenger, in.Sms, in.LiveChat),
	}
}

// providerConfig is the config block the caller filled in, of the four.
func providerConfig(w *model.WhatsAppConfigInput, m *model.MessengerConfigInput, s *model.SMSConfigInput, l *model.LiveChatConfigInput) workspace.ProviderConfig {
	var out workspace.ProviderConfig
	c := &out.Config
	if w != nil {
		out.GivenWhatsApp = true
		c.PhoneNumberID, c.AccessToken, c.AppSecret, c.VerifyToken = w.PhoneNumberID, w.AccessToken, w.AppSecret, w.VerifyToken
		c.APIBaseURL = deref(w.APIBaseURL)
		c.BusinessAccountID = deref(w.BusinessAccountID)
	}
	if m != nil {
		out.GivenMessenger = true
		c.PageID, c.PageAccessToken, c.AppSecret, c.VerifyToken = m.PageID, m.PageAccessToken, m.AppSecret, m.VerifyToken
		c.APIBaseURL = deref(m.APIBaseURL)
		c.HumanAgentTag = m.HumanAgentTag != nil && *m.HumanAgentTag
	}
	if s != nil {
		out.GivenSMS = true
		c.AccountSID, c.AuthToken, c.FromNumber = s.AccountSid, s.AuthToken, s.FromNumber
		c.APIBaseURL = deref(s.APIBaseURL)
	}
	if l != nil {
		out.GivenLiveChat = true
		c.AllowedOrigins = l.AllowedOrigins
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
