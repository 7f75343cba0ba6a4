package labels

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/apperr"
)

func TestCheckNameAndColor(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"  Billing  ", "Billing", true},
		{strings.Repeat("é", 50), strings.Repeat("é", 50), true},
		{strings.Repeat("é", 51), "", false},
		{" \t ", "", false},
	} {
		got, err := CheckName(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("CheckName(%q) = %q, %v", tc.in, got, err)
		}
		if err != nil && !apperr.Is(err, apperr.BadUserInput) {
			t.Errorf("CheckName(%q): %v is not BAD_USER_INPUT", tc.in, err)
		}
	}
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"#A0b1C2", "#a0b1c2", true},
		{" #ffffff ", "#ffffff", true},
		{"#fff", "", false},
		{"ffffff", "", false},
		{"#gggggg", "", false},
		{"red", "", false},
		{"#ffffff00", "", false},
	} {
		got, err := CheckColor(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("CheckColor(%q) = %q, %v", tc.in, got, err)
		}
	}
}
