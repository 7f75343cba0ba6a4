package apitest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/contact"
	"github.com/parleyhq/parley/ent/contactidentity"
	"github.com/parleyhq/parley/ent/interaction"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestContactsMergeConcurrency: merges that cannot all happen (A<-B and
// B<-A, and C<-B, at once) run concurrently with messages from every
// identity involved, on WhatsApp and by SMS. Afterwards every message is
// stored once, in a conversation of the surviving contact that holds its
// sender's identity; the losing merges got NOT_FOUND or CONFLICT and
// nothing else; no contact was lost or made up.
func TestContactsMergeConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		sms := w.Account(t, "SMS", map[string]any{"queueID": w.QueueID})
		db := s.App.DB.Client
		ctx := context.Background()
		const perSender = 4
		for round := 0; round < 3; round++ {
			numbers := []string{fmt.Sprintf("3469%d000001", round), fmt.Sprintf("3469%d000002", round), fmt.Sprintf("3469%d000003", round)}
			var ids []string
			for _, n := range numbers {
				ids = append(ids, customer(t, w.Admin, w.Inbound(t, w.WhatsApp, n, "hello from "+n)).Contact.ID)
			}
			a, b2, c := ids[0], ids[1], ids[2]
			merges := [][2]string{{a, b2}, {b2, a}, {c, b2}}

			var wg sync.WaitGroup
			codes := make([]string, len(merges))
			raws := make([]string, len(merges))
			for i, m := range merges {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := w.Admin.C.Op(t, "MergeContacts", map[string]any{"into": m[0], "from": m[1]})
					codes[i], raws[i] = r.Code(), string(r.Raw)
				}()
			}
			var mu sync.Mutex
			var recvErrs []error
			var bodies []string
			for _, n := range numbers {
				for k := 0; k < perSender; k++ {
					for _, ch := range []string{"wa", "sms"} {
						body := fmt.Sprintf("round %d %s %s %d", round, n, ch, k)
						acct, sender := w.WhatsApp, n
						if ch == "sms" {
							acct, sender = sms, "+"+n
						}
						bodies = append(bodies, body)
						wg.Add(1)
						go func() {
							defer wg.Done()
							_, err := s.App.Convs.Receive(ctx, inbound(t, acct, sender, body))
							if err != nil {
								mu.Lock()
								recvErrs = append(recvErrs, err)
								mu.Unlock()
							}
						}()
					}
				}
			}
			wg.Wait()
			if len(recvErrs) > 0 {
				t.Fatalf("round %d: messages refused during the merges: %v", round, recvErrs)
			}
			succeeded := 0
			for i, code := range codes {
				switch code {
				case "":
					succeeded++
				case "NOT_FOUND", "CONFLICT":
				default:
					t.Fatalf("round %d: merge %v: %s", round, merges[i], raws[i])
				}
			}
			if succeeded == 0 {
				t.Fatalf("round %d: no merge succeeded: %v", round, raws)
			}

			// The survivors: the contacts of the round still there.
			survivors := map[int]bool{}
			for _, id := range ids {
				if db.Contact.Query().Where(contact.ID(apitest.Atoi(t, id))).ExistX(ctx) {
					survivors[apitest.Atoi(t, id)] = true
				}
			}
			if len(survivors) != len(ids)-succeeded {
				t.Fatalf("round %d: %d survivors after %d merges", round, len(survivors), succeeded)
			}
			// Every identity of the round's numbers (one per channel) is a
			// survivor's, and both of a number's are the same contact's.
			for _, n := range numbers {
				idents := db.ContactIdentity.Query().Where(contactidentity.ExternalIDIn(n, "+"+n)).AllX(ctx)
				if len(idents) != 2 {
					t.Fatalf("round %d: number %s has %d identities", round, n, len(idents))
				}
				if idents[0].ContactID != idents[1].ContactID || !survivors[idents[0].ContactID] {
					t.Fatalf("round %d: number %s: identities of contacts %d and %d, survivors %v",
						round, n, idents[0].ContactID, idents[1].ContactID, survivors)
				}
			}
			// Every message once, in a conversation of the contact holding
			// its sender's identity, sent by that contact.
			for _, body := range append(bodies, "hello from "+numbers[0], "hello from "+numbers[1], "hello from "+numbers[2]) {
				ms := db.Message.Query().Where(message.Body(body)).WithConversation(func(q *ent.ConversationQuery) { q.WithIdentity() }).AllX(ctx)
				if len(ms) != 1 {
					t.Fatalf("round %d: %q stored %d times", round, body, len(ms))
				}
				m := ms[0]
				conv := m.Edges.Conversation
				if conv.ContactID == nil || !survivors[*conv.ContactID] || m.SenderContactID == nil || *m.SenderContactID != *conv.ContactID ||
					conv.Edges.Identity == nil || conv.Edges.Identity.ContactID != *conv.ContactID {
					t.Fatalf("round %d: %q in conversation %d of contact %v (sender %v), survivors %v", round, body, conv.ID, conv.ContactID, m.SenderContactID, survivors)
				}
			}
			// The history came along: one MERGED entry per merge, and no
			// entry of a contact that is gone.
			n := 0
			for id := range survivors {
				n += db.Interaction.Query().Where(interaction.ContactID(id), interaction.KindEQ(schematype.InteractionMerged)).CountX(ctx)
			}
			if n != succeeded {
				t.Fatalf("round %d: %d MERGED entries for %d merges", round, n, succeeded)
			}
			for _, id := range ids {
				if !survivors[apitest.Atoi(t, id)] && db.Interaction.Query().Where(interaction.ContactID(apitest.Atoi(t, id))).ExistX(ctx) {
					t.Fatalf("round %d: history of merged contact %s left behind", round, id)
				}
			}
		}
	})
}
