package attachments

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxFilenameBytes bounds a stored filename (the column allows 255 bytes).
const MaxFilenameBytes = 255

// CleanFilename makes an uploaded file's name safe to store, show and offer
// as a download name:
//
//   - only the last path element is kept (some browsers send C:\…\name);
//   - invalid UTF-8, control characters and invisible format characters
//     (bidirectional overrides that disguise "exe.pdf" as "fdp.exe", zero-width
//     characters) are removed; characters Windows forbids in names
//     (<>:"|?*) become "_"; leading and trailing dots and spaces go;
//   - the extension is corrected to fit the detected kind: a name whose
//     extension is not one of the kind's gets the kind's usual one, replacing
//     what looks like an extension ("invoice.exe" holding a PDF becomes
//     "invoice.pdf") or appended ("v1.2" becomes "v1.2.pdf"). Then the name a
//     recipient saves opens with the application the content is meant for;
//   - at most MaxFilenameBytes bytes, cut on a character boundary, the
//     extension kept;
//   - an empty result becomes "file" plus the extension.
func CleanFilename(name string, k *Kind) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == utf8.RuneError:
			return -1
		case strings.ContainsRune(`<>:"|?*`, r):
			return '_'
		case unicode.IsSpace(r):
			return ' '
		}
		return r
	}, name)
	name = strings.Trim(name, " .")

	stem, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		stem, ext = name[:i], strings.ToLower(name[i+1:])
	}
	fits := false
	for _, e := range k.Exts {
		if ext == e {
			fits = true
		}
	}
	switch {
	case fits:
		ext = name[len(stem)+1:] // keep the uploader's spelling (.JPG)
	case looksLikeExt(ext):
		ext = k.Exts[0]
	default:
		stem, ext = name, k.Exts[0]
	}
	stem = strings.TrimRight(stem, " .")
	if stem == "" {
		stem = "file"
	}
	if max := MaxFilenameBytes - len(ext) - 1; len(stem) > max {
		for max > 0 && !utf8.RuneStart(stem[max]) {
			max--
		}
		stem = strings.TrimRight(stem[:max], " .")
		if stem == "" {
			stem = "file"
		}
	}
	return stem + "." + ext
}

// looksLikeExt says whether what follows a name's last dot is an extension
// (as in "photo.pdf", "setup.exe") rather than part of the name ("v1.2").
func looksLikeExt(ext string) bool {
	if ext == "" || len(ext) > 5 {
		return false
	}
	letter := false
	for _, r := range ext {
		switch {
		case 'a' <= r && r <= 'z':
			letter = true
		case '0' <= r && r <= '9':
		default:
			return false
		}
	}
	return letter
}
