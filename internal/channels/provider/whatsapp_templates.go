package provider

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/apperr"
)

// WhatsApp message templates: the rules Meta applies to a template's name,
// language, category and body placeholders, which both the registration of
// templates and the sending of them check.

// Template limits of the Cloud API.
const (
	MaxTemplateName = 512
	MaxTemplateBody = 1024
	// MaxTemplateParameter bounds one body parameter's text.
	MaxTemplateParameter = 1024
)

// TemplateCategories are the categories Meta files templates under.
var TemplateCategories = []string{"MARKETING", "UTILITY", "AUTHENTICATION"}

var (
	templateName = regexp.MustCompile(`^[a-z0-9_]+$`)
	// templateLanguage is Meta's language code: "en", "fil", "en_US",
	// "pt_BR", "zh_HK".
	templateLanguage = regexp.MustCompile(`^[a-z]{2,3}(_[A-Z]{2})?$`)
	// placeholder is a body placeholder, {{1}}; spaces inside are not
	// Meta's form and are not placeholders.
	placeholder = regexp.MustCompile(`\{\{([0-9]+)\}\}`)
)

// TemplateLanguage returns code in Meta's form ("en-us" and "en_US" are
// "en_US"), or reports that it is not a language code.
func TemplateLanguage(code string) (string, bool) {
	code = strings.TrimSpace(strings.ReplaceAll(code, "-", "_"))
	lang, region, ok := strings.Cut(code, "_")
	code = strings.ToLower(lang)
	if ok {
		code += "_" + strings.ToUpper(region)
	}
	return code, templateLanguage.MatchString(code)
}

// CheckTemplate validates a template as Meta would register it and returns
// its language in Meta's form and the number of its body placeholders.
func CheckTemplate(name, language, category, body string) (lang string, placeholders int, err error) {
	if !templateName.MatchString(name) || len(name) > MaxTemplateName {
		return "", 0, apperr.Invalid("name", "a WhatsApp template name has only lower-case letters, digits and underscores (at most %d)", MaxTemplateName)
	}
	lang, ok := TemplateLanguage(language)
	if !ok {
		return "", 0, apperr.Invalid("language", "language must be a WhatsApp language code such as en, en_US or pt_BR")
	}
	if !slices.Contains(TemplateCategories, category) {
		return "", 0, apperr.Invalid("category", "category must be one of %s", strings.Join(TemplateCategories, ", "))
	}
	if strings.TrimSpace(body) == "" || utf8.RuneCountInString(body) > MaxTemplateBody {
		return "", 0, apperr.Invalid("body", "a template body has 1 to %d characters", MaxTemplateBody)
	}
	n, err := Placeholders(body)
	if err != nil {
		return "", 0, err
	}
	return lang, n, nil
}

// Placeholders counts a body's placeholders, which must be {{1}} to {{n}}
// with none missing (each may appear more than once).
func Placeholders(body string) (int, error) {
	seen := map[int]bool{}
	top := 0
	for _, m := range placeholder.FindAllStringSubmatch(body, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil || n < 1 || n > 100 {
			return 0, apperr.Invalid("body", "placeholder {{%s}}: placeholders are numbered from {{1}}", m[1])
		}
		seen[n] = true
		top = max(top, n)
	}
	for i := 1; i <= top; i++ {
		if !seen[i] {
			return 0, apperr.Invalid("body", "placeholders must be consecutive: {{%d}} is missing", i)
		}
	}
	return top, nil
}

// RenderTemplate fills in body's placeholders with params ({{1}} is
// params[0]): the text the customer reads.
func RenderTemplate(body string, params []string) string {
	return placeholder.ReplaceAllStringFunc(body, func(tok string) string {
		n, _ := strconv.Atoi(tok[2 : len(tok)-2])
		if n >= 1 && n <= len(params) {
			return params[n-1]
		}
		return tok
	})
}
