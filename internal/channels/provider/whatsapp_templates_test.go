package provider

import "testing"

func TestTemplateRules(t *testing.T) {
	for in, want := range map[string]string{"en": "en", "en-us": "en_US", "pt_BR": "pt_BR", "FIL": "fil"} {
		if got, ok := TemplateLanguage(in); !ok || got != want {
			t.Fatalf("TemplateLanguage(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"english", "en_USA", "", "e"} {
		if _, ok := TemplateLanguage(in); ok {
			t.Fatalf("TemplateLanguage(%q) accepted", in)
		}
	}
	for body, want := range map[string]int{"no placeholders": 0, "{{1}} and {{2}} and {{1}}": 2, "{{ 1 }} is text": 0, "{x} {{y}}": 0} {
		if n, err := Placeholders(body); err != nil || n != want {
			t.Fatalf("Placeholders(%q) = %d %v, want %d", body, n, err, want)
		}
	}
	for _, body := range []string{"{{2}}", "{{1}} {{3}}", "{{0}}"} {
		if _, err := Placeholders(body); err == nil {
			t.Fatalf("Placeholders(%q) accepted", body)
		}
	}
	if got := RenderTemplate("Hi {{1}}, {{2}}; again {{1}}, {{3}}", []string{"Ana", "A-1"}); got != "Hi Ana, A-1; again Ana, {{3}}" {
		t.Fatalf("RenderTemplate: %q", got)
	}
	if _, _, err := CheckTemplate("order_ready", "en_US", "UTILITY", "Hi {{1}}"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := CheckTemplate("order-ready", "en_US", "UTILITY", "Hi"); err == nil {
		t.Fatal("a name with a dash was accepted")
	}
}
