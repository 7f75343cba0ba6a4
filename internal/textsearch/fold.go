// Package textsearch makes search behave the same on SQLite and PostgreSQL:
// text is folded (lower-cased, accents removed, spaces collapsed) into a
// search key column when it is written, and queries are folded the same way
// and matched with LIKE on that column. SQLite's LIKE folds only ASCII and
// PostgreSQL's LIKE folds nothing, so neither is left to decide.
package textsearch

import (
	"strings"
	"unicode"

	"entgo.io/ent/dialect/sql"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/parleyhq/parley/internal/apperr"
)

// Fold returns s lower-cased, without diacritics ("José" -> "jose"), with
// runs of white space collapsed to one space.
func Fold(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	out = strings.ToLower(out)
	// ß and a few others have no single-rune lower-case mapping to ASCII;
	// the common one is spelt out so "strasse" finds "Straße".
	out = strings.ReplaceAll(out, "ß", "ss")
	return strings.Join(strings.Fields(out), " ")
}

// Key folds and joins several fields into one search key.
func Key(fields ...string) string {
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		if f = Fold(f); f != "" {
			parts = append(parts, f)
		}
	}
	return strings.Join(parts, " \x1f ")
}

// MaxQuery is the longest search query accepted, in bytes.
const MaxQuery = 200

// CheckQuery refuses, as BAD_USER_INPUT on the field "search", a query
// longer than MaxQuery or holding a control character other than white
// space (which Fold turns into a space). Such a query cannot mean what it
// says: SQLite ends a pattern at a NUL and so matched everything, and
// PostgreSQL refuses NUL in text. Every search calls it before Match.
func CheckQuery(query string) error {
	if len(query) > MaxQuery {
		return apperr.Invalid("search", "search is longer than %d characters", MaxQuery)
	}
	if strings.IndexFunc(query, func(r rune) bool { return unicode.IsControl(r) && !unicode.IsSpace(r) }) >= 0 {
		return apperr.Invalid("search", "search must not contain control characters")
	}
	return nil
}

// Escape is the LIKE escape character used by Contains.
const Escape = `\`

// Contains returns a LIKE pattern matching keys that contain the folded
// query, with LIKE's wildcards in the query escaped. Use it with
// `ESCAPE '\'` (see sqljson-free predicates in the services).
func Contains(query string) string {
	q := Fold(query)
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(q) + "%"
}

// Match is an ent predicate: the named search-key column contains the folded
// query. It works on both dialects (standard LIKE with an explicit ESCAPE).
func Match(column, query string) func(*sql.Selector) {
	pattern := Contains(query)
	return func(s *sql.Selector) {
		s.Where(sql.P(func(b *sql.Builder) {
			b.Ident(s.C(column)).WriteString(" LIKE ").Arg(pattern).WriteString(` ESCAPE '\'`)
		}))
	}
}
