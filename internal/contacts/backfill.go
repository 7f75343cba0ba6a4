package contacts

import (
	"context"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/contact"
	"github.com/parleyhq/parley/internal/phone"
)

// backfillBatch is how many contacts one backfill query reads.
const backfillBatch = 500

// Backfilled counts what BackfillPhoneKeys did (numbers only: it never
// says whose).
type Backfilled struct {
	// Keyed contacts got their phone key.
	Keyed int
	// Shared contacts have a number another contact holds the key of: they
	// stay unkeyed (merge them to make them one).
	Shared int
	// Invalid contacts have a phone that is not an international number.
	Invalid int
}

// BackfillPhoneKeys gives the contacts written before the unique phone key
// existed their key: the normalised phone, where no other contact holds
// it. Of contacts sharing a number the earliest (lowest id) gets it, the
// later ones stay unkeyed. Each key is one conditional update outside any
// transaction (only a contact still unkeyed is keyed; the unique index
// refuses a number someone holds), so it is idempotent and two instances
// may run it at once. Run at startup.
func (s *Service) BackfillPhoneKeys(ctx context.Context) (Backfilled, error) {
	var out Backfilled
	last := 0
	for {
		batch, err := s.client.Contact.Query().
			Where(contact.IDGT(last), contact.PhoneKeyIsNil(), contact.PhoneNotNil(), contact.PhoneNEQ("")).
			Order(ent.Asc(contact.FieldID)).Limit(backfillBatch).
			Select(contact.FieldID, contact.FieldPhone).All(ctx)
		if err != nil {
			return out, err
		}
		for _, c := range batch {
			last = c.ID
			key, err := phone.Normalize(*c.Phone)
			if err != nil {
				out.Invalid++
				continue
			}
			taken, err := s.client.Contact.Query().Where(contact.PhoneKey(key)).Exist(ctx)
			if err != nil {
				return out, err
			}
			if taken {
				out.Shared++
				continue
			}
			n, err := s.client.Contact.Update().Where(contact.ID(c.ID), contact.PhoneKeyIsNil()).SetPhoneKey(key).Save(ctx)
			switch {
			case ent.IsConstraintError(err):
				// Taken meanwhile (another instance keyed an earlier
				// contact with the number, or a sender just wrote).
				out.Shared++
			case err != nil:
				return out, err
			case n == 1:
				out.Keyed++
			}
		}
		if len(batch) < backfillBatch {
			return out, nil
		}
	}
}
