// Package phone normalises phone numbers to E.164 ("+" and 8 to 15 digits,
// the first not 0), the one form Parley stores and compares: a WhatsApp
// sender ("14155550100"), a Twilio sender ("+14155550100") and an agent's
// typing ("+1 (415) 555-0100", "0014155550100") are the same number.
package phone

import (
	"errors"
	"strings"
)

// ErrInvalid says a string is not a phone number in international form.
var ErrInvalid = errors.New("not an international phone number: use E.164, such as +14155550100")

// Normalize returns s in E.164. It accepts a leading "+" or "00", and
// spaces, dots, dashes and parentheses between digits; anything else, or a
// number without its country code, is ErrInvalid.
func Normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	case strings.HasPrefix(s, "00"):
		s = s[2:]
	default:
		return "", ErrInvalid
	}
	return digits(s)
}

// FromWhatsApp returns the E.164 form of a WhatsApp id (wa_id, "from"),
// which the Cloud API gives as digits without "+".
func FromWhatsApp(waID string) (string, error) {
	s := strings.TrimSpace(waID)
	if strings.HasPrefix(s, "+") {
		s = s[1:]
	}
	return digits(s)
}

func digits(s string) (string, error) {
	var b strings.Builder
	b.WriteByte('+')
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
			// Separators, but not first or last.
			if i == 0 || i == len(s)-1 {
				return "", ErrInvalid
			}
		default:
			return "", ErrInvalid
		}
	}
	out := b.String()
	if n := len(out) - 1; n < 8 || n > 15 || out[1] == '0' {
		return "", ErrInvalid
	}
	return out, nil
}
