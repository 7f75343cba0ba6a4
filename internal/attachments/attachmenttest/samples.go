// Package attachmenttest builds tiny sample files of every kind the
// attachments service accepts, and of kinds it must refuse, for tests. The
// samples are made here, from the formats' specifications, rather than
// checked in as opaque binaries, so a reader can see what each one is.
package attachmenttest

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"unicode/utf16"
)

// Sample is a file to upload.
type Sample struct {
	// Name is the filename the client sends.
	Name string
	// Claimed is the Content-Type the client claims (ignored by the server).
	Claimed string
	Data    []byte
	// Want is the content type the server must detect ("" = refused).
	Want string
}

// Allowed returns one sample of every allowed kind, with its expected
// detected content type.
func Allowed() []Sample {
	return []Sample{
		{"informe.pdf", "application/pdf", PDF(), "application/pdf"},
		{"carta.doc", "application/msword", OLE("WordDocument", "\x01CompObj", "\x05SummaryInformation"), "application/msword"},
		{"cuentas.xls", "application/vnd.ms-excel", OLE("Workbook", "\x05SummaryInformation"), "application/vnd.ms-excel"},
		{"viejo.xls", "application/vnd.ms-excel", OLE("Book"), "application/vnd.ms-excel"},
		{"charla.ppt", "application/vnd.ms-powerpoint", OLE("Current User", "PowerPoint Document"), "application/vnd.ms-powerpoint"},
		{"carta.docx", "application/octet-stream", OOXML("word/document.xml"), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"cuentas.xlsx", "application/octet-stream", OOXML("xl/workbook.xml"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
		{"charla.pptx", "application/octet-stream", OOXML("ppt/presentation.xml"), "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
		{"notas.txt", "text/plain", Text(), "text/plain"},
		{"carta.rtf", "application/rtf", RTF(), "application/rtf"},
		{"foto.jpg", "image/jpeg", JPEG(), "image/jpeg"},
		{"logo.png", "image/png", PNG(), "image/png"},
		{"anim.gif", "image/gif", GIF(), "image/gif"},
		{"scan.bmp", "image/bmp", BMP(), "image/bmp"},
		{"foto.webp", "image/webp", WEBP(), "image/webp"},
		{"scan.tif", "image/tiff", TIFF(binary.LittleEndian), "image/tiff"},
		{"scan-mm.tiff", "image/tiff", TIFF(binary.BigEndian), "image/tiff"},
		{"iphone.heic", "image/heic", HEIF("heic", "mif1", "heic"), "image/heic"},
		{"generic.heif", "image/heif", HEIF("mif1", "mif1", "miaf"), "image/heif"},
	}
}

// Refused returns samples the server must refuse, whatever they claim.
func Refused() []Sample {
	return []Sample{
		{"invoice.pdf", "application/pdf", EXE(), ""},
		{"x.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", PlainZIP(), ""},
		{"macros.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", OOXML("word/document.xml", "word/vbaProject.bin"), ""},
		{"page.txt", "text/plain", []byte("<!DOCTYPE html>\n<html><body><script>alert(document.cookie)</script></body></html>\n"), ""},
		{"hidden.txt", "text/plain", []byte("Hola\n\n\n<ScRiPt>alert(1)</script>\n"), ""},
		{"image.svg", "image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><circle r="4"/></svg>`), ""},
		{"nul.txt", "text/plain", []byte("looks like text\x00but has a NUL byte"), ""},
		{"latin1.txt", "text/plain", []byte("caf\xe9 con leche"), ""},
		{"mail.doc", "application/msword", OLE("__substg1.0_0037001F", "__properties_version1.0"), ""},
		{"broken.doc", "application/msword", []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 truncated compound file"), ""},
		{"photo.heic", "image/heic", HEIF("avif", "mif1", "avif"), ""},
		{"clip.heic", "image/heic", HEIF("isom", "isom", "mp41"), ""},
	}
}

// PDF is a one-page PDF with a correct cross-reference table.
func PDF() []byte {
	content := "BT /F1 18 Tf 20 40 Td (Hola Parley) Tj ET"
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

func img() image.Image {
	m := image.NewPaletted(image.Rect(0, 0, 2, 2), []color.Color{color.White, color.RGBA{0x1f, 0x6f, 0xeb, 0xff}})
	m.SetColorIndex(1, 1, 1)
	return m
}

// PNG is a 2×2 PNG.
func PNG() []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, img())
	return b.Bytes()
}

// GIF is a 2×2 GIF.
func GIF() []byte {
	var b bytes.Buffer
	_ = gif.Encode(&b, img(), nil)
	return b.Bytes()
}

// JPEG is a 2×2 JPEG.
func JPEG() []byte {
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img(), nil)
	return b.Bytes()
}

// BMP is a 1×1 24-bit BMP (BITMAPINFOHEADER).
func BMP() []byte {
	b := make([]byte, 58)
	copy(b, "BM")
	le := binary.LittleEndian
	le.PutUint32(b[2:], 58)  // file size
	le.PutUint32(b[10:], 54) // pixel data offset
	le.PutUint32(b[14:], 40) // BITMAPINFOHEADER
	le.PutUint32(b[18:], 1)  // width
	le.PutUint32(b[22:], 1)  // height
	le.PutUint16(b[26:], 1)  // planes
	le.PutUint16(b[28:], 24) // bits per pixel
	le.PutUint32(b[34:], 4)  // image size (one row, padded)
	copy(b[54:], []byte{0xeb, 0x6f, 0x1f, 0})
	return b
}

// WEBP is a RIFF container holding a (header-only) lossless VP8L chunk.
func WEBP() []byte {
	chunk := []byte{0x2f, 0, 0, 0, 0} // VP8L signature, 1×1
	b := []byte("RIFF\x00\x00\x00\x00WEBPVP8L")
	b = binary.LittleEndian.AppendUint32(b, uint32(len(chunk)))
	b = append(b, chunk...)
	if len(chunk)%2 == 1 {
		b = append(b, 0)
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

// TIFF is a 1×1 8-bit greyscale baseline TIFF in the given byte order
// (II*\0 for little-endian, MM\0* for big-endian).
func TIFF(order binary.AppendByteOrder) []byte {
	var b []byte
	if order == binary.AppendByteOrder(binary.LittleEndian) {
		b = []byte("II")
	} else {
		b = []byte("MM")
	}
	b = order.AppendUint16(b, 42)
	b = order.AppendUint32(b, 8)
	type tag struct{ id, typ uint16 }
	entries := []struct {
		tag
		val uint32
	}{
		{tag{256, 3}, 1}, {tag{257, 3}, 1}, {tag{258, 3}, 8}, {tag{259, 3}, 1},
		{tag{262, 3}, 1}, {tag{273, 4}, 0}, {tag{277, 3}, 1}, {tag{278, 3}, 1}, {tag{279, 4}, 1},
	}
	pixel := uint32(8 + 2 + len(entries)*12 + 4)
	b = order.AppendUint16(b, uint16(len(entries)))
	for _, e := range entries {
		val := e.val
		if e.id == 273 {
			val = pixel
		}
		b = order.AppendUint16(b, e.id)
		b = order.AppendUint16(b, e.typ)
		b = order.AppendUint32(b, 1)
		if e.typ == 3 { // SHORT, left-justified in the value field
			b = order.AppendUint16(b, uint16(val))
			b = append(b, 0, 0)
		} else {
			b = order.AppendUint32(b, val)
		}
	}
	b = order.AppendUint32(b, 0) // no next IFD
	return append(b, 0x80)
}

// HEIF is the start of an ISO BMFF file: an ftyp box with the major brand
// and compatible brands, then an empty meta box.
func HEIF(major string, compatible ...string) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, uint32(16+4*len(compatible)))
	b = append(b, "ftyp"+major...)
	b = binary.BigEndian.AppendUint32(b, 0)
	for _, c := range compatible {
		b = append(b, c...)
	}
	b = binary.BigEndian.AppendUint32(b, 12)
	b = append(b, "meta"...)
	return binary.BigEndian.AppendUint32(b, 0)
}

// RTF is a short RTF document.
func RTF() []byte {
	return []byte(`{\rtf1\ansi\deff0{\fonttbl{\f0 Helvetica;}}\f0\fs24 Hola, \u241?ame.\par}` + "\n")
}

// Text is UTF-8 text with accents and symbols.
func Text() []byte {
	return []byte("Café para dos, año 2024 — naïve señor, Ünïcödé ✓ 日本語\r\nSegunda línea\n")
}

// EXE is the start of a Windows executable (MZ header, DOS stub).
func EXE() []byte {
	b := make([]byte, 128)
	copy(b, "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x80)
	copy(b[0x40:], "This program cannot be run in DOS mode.\r\r\n$")
	return append(b, "PE\x00\x00"...)
}

// PlainZIP is a ZIP archive that is not an Office document.
func PlainZIP() []byte {
	return zipOf(map[string]string{"readme.txt": "hola", "docs/word/notes.txt": "not an office file"})
}

// OOXML is an Office Open XML package with [Content_Types].xml, the
// package relationships and the given parts.
func OOXML(parts ...string) []byte {
	files := map[string]string{
		"[Content_Types].xml": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
			`<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
			`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
			`<Default Extension="xml" ContentType="application/xml"/></Types>`,
		"_rels/.rels": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
			`<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="` + parts[0] + `"/></Relationships>`,
	}
	for _, p := range parts {
		files[p] = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><root/>`
	}
	return zipOf(files)
}

func zipOf(files map[string]string) []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	// [Content_Types].xml first, as Office writes it; the rest in any order.
	if c, ok := files["[Content_Types].xml"]; ok {
		w, _ := z.Create("[Content_Types].xml")
		_, _ = w.Write([]byte(c))
	}
	for name, c := range files {
		if name == "[Content_Types].xml" {
			continue
		}
		w, _ := z.Create(name)
		_, _ = w.Write([]byte(c))
	}
	_ = z.Close()
	return b.Bytes()
}

// OLE is a version 3 compound file ([MS-CFB]) whose root storage holds
// empty streams with the given names: a header, one FAT sector and the
// directory. The names decide what the server takes it for.
func OLE(streams ...string) []byte {
	const sector = 512
	le := binary.LittleEndian
	entries := 1 + len(streams)
	dirSectors := (entries*128 + sector - 1) / sector
	b := make([]byte, sector*(2+dirSectors))
	h := b[:sector]
	copy(h, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
	le.PutUint16(h[0x18:], 0x3e)   // minor version
	le.PutUint16(h[0x1a:], 3)      // major version
	le.PutUint16(h[0x1c:], 0xfffe) // byte order
	le.PutUint16(h[0x1e:], 9)      // 512-byte sectors
	le.PutUint16(h[0x20:], 6)      // 64-byte mini sectors
	le.PutUint32(h[0x2c:], 1)      // one FAT sector
	le.PutUint32(h[0x30:], 1)      // directory starts at sector 1
	le.PutUint32(h[0x38:], 4096)   // mini stream cutoff
	le.PutUint32(h[0x3c:], 0xfffffffe)
	le.PutUint32(h[0x44:], 0xfffffffe)
	for i := 0; i < 109; i++ {
		le.PutUint32(h[0x4c+4*i:], 0xffffffff)
	}
	le.PutUint32(h[0x4c:], 0) // the FAT is sector 0

	fat := b[sector : 2*sector]
	for i := 0; i < sector/4; i++ {
		le.PutUint32(fat[4*i:], 0xffffffff)
	}
	le.PutUint32(fat[0:], 0xfffffffd) // sector 0: FAT
	for i := 0; i < dirSectors; i++ {
		next := uint32(0xfffffffe)
		if i < dirSectors-1 {
			next = uint32(i + 2)
		}
		le.PutUint32(fat[4*(i+1):], next)
	}

	dir := b[2*sector:]
	put := func(i int, name string, typ byte, left, right, child uint32) {
		e := dir[i*128 : (i+1)*128]
		u := utf16.Encode([]rune(name))
		for j, c := range u {
			le.PutUint16(e[2*j:], c)
		}
		le.PutUint16(e[64:], uint16(2*len(u)+2))
		e[66], e[67] = typ, 1 // black
		le.PutUint32(e[68:], left)
		le.PutUint32(e[72:], right)
		le.PutUint32(e[76:], child)
		le.PutUint32(e[116:], 0xfffffffe)
	}
	const none = 0xffffffff
	child := uint32(none)
	if len(streams) > 0 {
		child = 1
	}
	put(0, "Root Entry", 5, none, none, child)
	// The root's children as a chain of right siblings: a valid, if
	// unbalanced, red-black tree.
	for i, s := range streams {
		right := uint32(none)
		if i < len(streams)-1 {
			right = uint32(i + 2)
		}
		put(i+1, s, 2, none, right, none)
	}
	return b
}
