package download_test

import (
	"mime"
	"testing"

	"github.com/parleyhq/parley/internal/attachments/download"
)

func TestAttachmentsContentDisposition(t *testing.T) {
	cases := []struct{ disp, name, want string }{
		{"inline", "foto.png", `inline; filename="foto.png"; filename*=UTF-8''foto.png`},
		{"attachment", "año 2024 — informe.docx", `attachment; filename="a_o 2024 _ informe.docx"; filename*=UTF-8''a%C3%B1o%202024%20%E2%80%94%20informe.docx`},
		{"attachment", `50% "off".txt`, `attachment; filename="50_ _off_.txt"; filename*=UTF-8''50%25%20%22off%22.txt`},
	}
	for _, c := range cases {
		got := download.ContentDisposition(c.disp, c.name)
		if got != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.name, got, c.want)
		}
		// Go's own parser decodes filename* back to the exact name.
		_, params, err := mime.ParseMediaType(got)
		if err != nil || params["filename"] != c.name {
			t.Errorf("%q parses as %q (%v)", c.name, params["filename"], err)
		}
	}
}
