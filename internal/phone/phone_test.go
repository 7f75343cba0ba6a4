package phone

import (
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"+14155550100", "+14155550100"},
		{" +1 (415) 555-0100 ", "+14155550100"},
		{"0014155550100", "+14155550100"},
		{"+44 20 7946 0958", "+442079460958"},
		{"+49.30.1234567", "+49301234567"},
		{"4155550100", ""},        // no country code
		{"+0155550100", ""},       // country codes do not start with 0
		{"+1415555010012345", ""}, // more than 15 digits
		{"+1234567", ""},          // fewer than 8
		{"+1415555O100", ""},      // a letter O
		{"+-14155550100", ""},     // separator first
		{"", ""},
	} {
		got, err := Normalize(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Normalize(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestFromWhatsApp(t *testing.T) {
	if got, err := FromWhatsApp("14155550100"); err != nil || got != "+14155550100" {
		t.Fatalf("FromWhatsApp = %q, %v", got, err)
	}
	if _, err := FromWhatsApp("abc"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("FromWhatsApp(abc) = %v, want ErrInvalid", err)
	}
}
