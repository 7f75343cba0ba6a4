package channels

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SplitText cuts s into pieces of at most max characters, at a line break
// or a space where one is near, so a long reply reaches a provider that
// limits message length (Messenger 2000, Twilio 1600, WhatsApp 4096) whole
// and in order.
func SplitText(s string, max int) []string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	var out []string
	r := []rune(s)
	for len(r) > 0 {
		if len(r) <= max {
			out = append(out, string(r))
			break
		}
		cut := max
		// Prefer a line break, then a space, in the last quarter.
		for _, sep := range []func(rune) bool{func(c rune) bool { return c == '\n' }, unicode.IsSpace} {
			found := false
			for i := max; i > max*3/4; i-- {
				if sep(r[i]) {
					cut, found = i, true
					break
				}
			}
			if found {
				break
			}
		}
		piece := strings.TrimRightFunc(string(r[:cut]), unicode.IsSpace)
		if piece != "" {
			out = append(out, piece)
		}
		r = []rune(strings.TrimLeftFunc(string(r[cut:]), unicode.IsSpace))
	}
	return out
}

// LocationText makes a shared location readable for an agent, with a maps
// link.
func LocationText(lat, lng float64, name, address string) string {
	var b strings.Builder
	b.WriteString("Location")
	label := strings.TrimSpace(strings.Join(nonEmpty(strings.TrimSpace(name), strings.TrimSpace(address)), ", "))
	if label != "" {
		b.WriteString(": ")
		b.WriteString(label)
	}
	ll := strconv.FormatFloat(lat, 'f', -1, 64) + "," + strconv.FormatFloat(lng, 'f', -1, 64)
	b.WriteString("\nhttps://www.google.com/maps/search/?api=1&query=")
	b.WriteString(ll)
	return b.String()
}

func nonEmpty(xs ...string) []string {
	var out []string
	for _, x := range xs {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// JoinText joins non-empty parts with newlines.
func JoinText(parts ...string) string {
	return strings.Join(nonEmpty(parts...), "\n")
}
