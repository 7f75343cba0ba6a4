package livechat

import (
	"context"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/channelaccount"
	"github.com/parleyhq/parley/ent/schema/schematype"
)

// FirstAccount returns the oldest enabled LIVE_CHAT account, or nil when there is
// none, so that the /demo page can embed the widget without being told
// which account to use.
func (s *Service) FirstAccount(ctx context.Context) (*ent.ChannelAccount, error) {
	a, err := s.Origins.client.ChannelAccount.Query().
		Where(channelaccount.ChannelEQ(schematype.ChannelLiveChat), channelaccount.Enabled(true)).
		Order(channelaccount.ByID()).First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return a, err
}
