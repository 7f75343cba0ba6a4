package attachments

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"path"
	"strings"
	"unicode/utf8"
)

// Kind is one allowed kind of file.
type Kind struct {
	// Name is what people call it: "PDF", "DOCX", "PNG".
	Name string
	// MIME is the media type stored as the attachment's contentType and
	// served as its Content-Type.
	MIME string
	// Exts are the filename extensions (lowercase, without the dot) that
	// fit the kind; the first is the one a corrected name gets.
	Exts []string
}

// Inline reports whether browsers should show the file rather than save it:
// images and PDF.
func (k *Kind) Inline() bool { return IsInline(k.MIME) }

// IsInline reports whether a stored content type is shown inline.
func IsInline(contentType string) bool {
	return strings.HasPrefix(contentType, "image/") || contentType == "application/pdf"
}

// The allowed kinds. Nothing else is stored.
var (
	KindPDF  = &Kind{"PDF", "application/pdf", []string{"pdf"}}
	KindDOC  = &Kind{"DOC", "application/msword", []string{"doc", "dot"}}
	KindXLS  = &Kind{"XLS", "application/vnd.ms-excel", []string{"xls", "xlt"}}
	KindPPT  = &Kind{"PPT", "application/vnd.ms-powerpoint", []string{"ppt", "pps", "pot"}}
	KindDOCX = &Kind{"DOCX", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", []string{"docx", "dotx"}}
	KindXLSX = &Kind{"XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", []string{"xlsx", "xltx"}}
	KindPPTX = &Kind{"PPTX", "application/vnd.openxmlformats-officedocument.presentationml.presentation", []string{"pptx", "ppsx", "potx"}}
	KindTXT  = &Kind{"TXT", "text/plain", []string{"txt", "text", "log", "csv", "tsv", "md"}}
	KindRTF  = &Kind{"RTF", "application/rtf", []string{"rtf"}}
	KindJPEG = &Kind{"JPEG", "image/jpeg", []string{"jpg", "jpeg", "jpe", "jfif"}}
	KindPNG  = &Kind{"PNG", "image/png", []string{"png"}}
	KindGIF  = &Kind{"GIF", "image/gif", []string{"gif"}}
	KindBMP  = &Kind{"BMP", "image/bmp", []string{"bmp", "dib"}}
	KindWEBP = &Kind{"WEBP", "image/webp", []string{"webp"}}
	KindTIFF = &Kind{"TIFF", "image/tiff", []string{"tif", "tiff"}}
	KindHEIC = &Kind{"HEIC", "image/heic", []string{"heic", "heif"}}
	KindHEIF = &Kind{"HEIF", "image/heif", []string{"heif", "heic"}}
)

// Kinds lists every allowed kind.
var Kinds = []*Kind{
	KindPDF, KindDOC, KindXLS, KindPPT, KindDOCX, KindXLSX, KindPPTX, KindTXT, KindRTF,
	KindJPEG, KindPNG, KindGIF, KindBMP, KindWEBP, KindTIFF, KindHEIC, KindHEIF,
}

// ErrNotAllowed is Detect's answer for anything that is not an allowed kind.
var ErrNotAllowed = errors.New("not an allowed kind of file")

// Detect says what the size bytes of r are, judging by content only: magic
// numbers for PDF, RTF and the image formats; the root storage's stream
// names for the OLE compound files of DOC, XLS and PPT; the entries of the
// ZIP container for DOCX, XLSX and PPTX; and, for text, valid UTF-8 without
// NUL bytes that does not look like markup. A file's name and its
// uploader's claimed type play no part.
func Detect(r io.ReaderAt, size int64) (*Kind, error) {
	if size <= 0 {
		return nil, ErrNotAllowed
	}
	head := make([]byte, min(size, 512))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, err
	}
	has := func(off int, magic string) bool {
		return len(head) >= off+len(magic) && string(head[off:off+len(magic)]) == magic
	}
	switch {
	case has(0, "%PDF-"):
		return KindPDF, nil
	case has(0, "\x89PNG\r\n\x1a\n") && has(12, "IHDR"):
		return KindPNG, nil
	case has(0, "GIF87a"), has(0, "GIF89a"):
		return KindGIF, nil
	case has(0, "\xff\xd8\xff"):
		return KindJPEG, nil
	case has(0, "RIFF") && has(8, "WEBP") && (has(12, "VP8 ") || has(12, "VP8L") || has(12, "VP8X")):
		return KindWEBP, nil
	case has(0, "II*\x00"), has(0, "MM\x00*"), has(0, "II+\x00"), has(0, "MM\x00+"):
		return KindTIFF, nil
	case has(0, "BM") && isBMP(head):
		return KindBMP, nil
	case has(4, "ftyp"):
		if k := heifKind(head); k != nil {
			return k, nil
		}
		return nil, ErrNotAllowed
	case has(0, oleMagic):
		return oleKind(r, size)
	case has(0, "PK\x03\x04"):
		return ooxmlKind(r, size)
	case has(0, `{\rtf`):
		return KindRTF, nil
	}
	return textKind(r, size)
}

// isBMP checks the BITMAPFILEHEADER beyond its two-letter magic: a known
// DIB header size right after it.
func isBMP(h []byte) bool {
	if len(h) < 26 {
		return false
	}
	switch binary.LittleEndian.Uint32(h[14:18]) {
	case 12, 16, 40, 52, 56, 64, 108, 124:
		return binary.LittleEndian.Uint32(h[10:14]) >= 26
	}
	return false
}

// heifKind reads the ISO BMFF ftyp box: HEIC for the HEVC-coded brands,
// HEIF for the generic image brands. AVIF and video brands are refused.
func heifKind(h []byte) *Kind {
	if len(h) < 16 {
		return nil
	}
	boxSize := int(binary.BigEndian.Uint32(h[0:4]))
	if boxSize < 16 || boxSize%4 != 0 {
		return nil
	}
	heic := map[string]bool{"heic": true, "heix": true, "hevc": true, "hevx": true, "heim": true, "heis": true, "hevm": true, "hevs": true}
	major := string(h[8:12])
	if heic[major] {
		return KindHEIC
	}
	if major != "mif1" && major != "msf1" {
		return nil
	}
	for off := 16; off+4 <= boxSize && off+4 <= len(h); off += 4 {
		if heic[string(h[off:off+4])] {
			return KindHEIC
		}
	}
	return KindHEIF
}

// ooxmlKind accepts a ZIP only as an Office Open XML document: a
// [Content_Types].xml entry and parts under exactly one of word/, xl/ or
// ppt/. Macro-enabled documents (a vbaProject.bin part) are refused, and so
// is every other ZIP. Only the central directory is read, nothing is
// decompressed.
func ooxmlKind(r io.ReaderAt, size int64) (*Kind, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, ErrNotAllowed
	}
	var contentTypes bool
	found := map[*Kind]bool{}
	for _, f := range zr.File {
		name := f.Name
		switch {
		case name == "[Content_Types].xml":
			contentTypes = true
		case strings.EqualFold(path.Base(name), "vbaProject.bin"):
			return nil, ErrNotAllowed
		case strings.HasPrefix(name, "word/"):
			found[KindDOCX] = true
		case strings.HasPrefix(name, "xl/"):
			found[KindXLSX] = true
		case strings.HasPrefix(name, "ppt/"):
			found[KindPPTX] = true
		}
	}
	if !contentTypes || len(found) != 1 {
		return nil, ErrNotAllowed
	}
	for k := range found {
		return k, nil
	}
	return nil, ErrNotAllowed
}

// markup is what makes a text file something a browser or viewer would run
// or render as a document (HTML, SVG, XML). Such files are refused rather
// than stored as text.
var markup = []string{"<!doctype", "<html", "<head", "<body", "<script", "<iframe", "<svg", "<?xml", "<object", "<embed"}

// textKind accepts plain text: valid UTF-8 (a BOM allowed) throughout, no
// NUL byte, and no markup: not starting with "<" and none of the HTML, SVG
// or XML openers in the first KiB.
func textKind(r io.ReaderAt, size int64) (*Kind, error) {
	buf := make([]byte, 64<<10)
	var carry []byte
	for off := int64(0); off < size; {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if n == 0 && err != nil {
			return nil, err
		}
		chunk := buf[:n]
		if off == 0 && looksLikeMarkup(chunk) {
			return nil, ErrNotAllowed
		}
		if bytes.IndexByte(chunk, 0) >= 0 {
			return nil, ErrNotAllowed
		}
		data := append(carry, chunk...)
		cut := completeRunes(data)
		if !utf8.Valid(data[:cut]) {
			return nil, ErrNotAllowed
		}
		carry = append([]byte(nil), data[cut:]...)
		off += int64(n)
	}
	if len(carry) > 0 {
		return nil, ErrNotAllowed
	}
	return KindTXT, nil
}

// completeRunes returns the length of the prefix of b that ends on a rune
// boundary: an incomplete multi-byte sequence at the end is left for the
// next chunk.
func completeRunes(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}

func looksLikeMarkup(b []byte) bool {
	b = b[:min(len(b), 1024)]
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n\f")
	if len(trimmed) > 0 && trimmed[0] == '<' {
		return true
	}
	lower := bytes.ToLower(b)
	for _, m := range markup {
		if bytes.Contains(lower, []byte(m)) {
			return true
		}
	}
	return false
}
