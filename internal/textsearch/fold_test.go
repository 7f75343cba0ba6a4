package textsearch

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/apperr"
)

func TestFold(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"José Álvarez", "jose alvarez"},
		{"  MÜLLER\t Straße ", "muller strasse"},
		{"Ñandú", "nandu"},
		{"Çağrı", "cagrı"},
		{"", ""},
	} {
		if got := Fold(tc.in); got != tc.want {
			t.Errorf("Fold(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestContainsEscapes(t *testing.T) {
	if got, want := Contains(`50%_off\`), `%50\%\_off\\%`; got != want {
		t.Fatalf("Contains = %q, want %q", got, want)
	}
}

func TestCheckQuery(t *testing.T) {
	for _, tc := range []struct {
		q  string
		ok bool
	}{
		{"José", true},
		{"good\tmorning\r\n", true},
		{"50%_off", true},
		{strings.Repeat("a", MaxQuery), true},
		{strings.Repeat("a", MaxQuery+1), false},
		{"\x00", false},
		{"a\x01b", false},
		{"\x1b[2J", false},
		{"\x7f", false},
		{"\u009b", false},
	} {
		err := CheckQuery(tc.q)
		if (err == nil) != tc.ok || (err != nil && !apperr.Is(err, apperr.BadUserInput)) {
			t.Errorf("CheckQuery(%q) = %v, want ok %v", tc.q, err, tc.ok)
		}
	}
}
