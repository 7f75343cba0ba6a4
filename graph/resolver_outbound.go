package graph

import (
	"github.com/parleyhq/parley/graph/model"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/conversations"
)

// templateRequest is a WhatsApp template of the API as the conversations
// service takes it.
func templateRequest(in *model.WhatsAppTemplateInput) *conversations.TemplateInput {
	if in == nil {
		return nil
	}
	return &conversations.TemplateInput{Name: in.Name, Language: in.Language, Parameters: in.Parameters,
		HeaderParameter: deref(in.HeaderParameter), HeaderMediaURL: deref(in.HeaderMediaURL), ButtonParameters: values(in.ButtonParameters)}
}

func startInput(in model.StartConversationInput) conversations.StartInput {
	out := conversations.StartInput{
		ChannelAccountID: in.ChannelAccountID, To: deref(in.To), Body: deref(in.Body),
		Template: templateRequest(in.WhatsappTemplate), AttachmentIDs: in.AttachmentIDs,
		ClientMutationID: deref(in.ClientMutationID),
	}
	if in.ContactID != nil {
		out.ContactID = *in.ContactID
	}
	return out
}

func sentPayload(res *conversations.Sent, err error) (*model.SendMessagePayload, error) {
	if err != nil {
		return nil, err
	}
	return &model.SendMessagePayload{Message: res.Message, Conversation: res.Conversation}, nil
}

func whatsAppTemplateInput(in model.CreateWhatsAppTemplateInput) channels.TemplateInput {
	return channels.TemplateInput{Name: in.Name, Language: in.Language, Category: in.Category, Body: in.Body,
		Header: in.Header, Buttons: values(in.Buttons)}
}

// values is a list input of the API without its pointers.
func values[T any](in []*T) []T {
	if in == nil {
		return nil
	}
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = *v
	}
	return out
}
