package textsearch

import "testing"

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
