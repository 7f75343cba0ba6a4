package attachments_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/attachments"
)

func TestAttachmentsCleanFilename(t *testing.T) {
	long := strings.Repeat("ñ", 200) + ".pdf" // 404 bytes
	cases := []struct {
		in   string
		kind *attachments.Kind
		want string
	}{
		{"informe.pdf", attachments.KindPDF, "informe.pdf"},
		{"Informe Final.PDF", attachments.KindPDF, "Informe Final.PDF"},
		{`C:\Users\ana\Desktop\informe.pdf`, attachments.KindPDF, "informe.pdf"},
		{"../../etc/passwd", attachments.KindTXT, "passwd.txt"},
		{"invoice.exe", attachments.KindPDF, "invoice.pdf"},
		{"photo.pdf", attachments.KindPNG, "photo.png"},
		{"v1.2", attachments.KindPDF, "v1.2.pdf"},
		{"report", attachments.KindDOCX, "report.docx"},
		{"notes.csv", attachments.KindTXT, "notes.csv"},
		{"foto.jpeg", attachments.KindJPEG, "foto.jpeg"},
		{"invoice\u202egpj.exe", attachments.KindPDF, "invoicegpj.pdf"},
		{"a\x00b\x1fc\x7fd\u200b.txt", attachments.KindTXT, "abcd.txt"},
		{`wh<a>t:"is"|this?*.txt`, attachments.KindTXT, "wh_a_t__is__this__.txt"},
		{"tab\tand\nnewline.txt", attachments.KindTXT, "tabandnewline.txt"},
		{"  .hidden.txt.  ", attachments.KindTXT, "hidden.txt"},
		{"", attachments.KindPNG, "file.png"},
		{"...", attachments.KindPNG, "file.png"},
		{"bad\xffutf8.txt", attachments.KindTXT, "badutf8.txt"},
		{"año 2024 — informe.pdf", attachments.KindPDF, "año 2024 — informe.pdf"},
	}
	for _, c := range cases {
		if got := attachments.CleanFilename(c.in, c.kind); got != c.want {
			t.Errorf("CleanFilename(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	got := attachments.CleanFilename(long, attachments.KindPDF)
	if len(got) > attachments.MaxFilenameBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, "ñ.pdf") {
		t.Fatalf("long name: %d bytes, %q", len(got), got)
	}
}
