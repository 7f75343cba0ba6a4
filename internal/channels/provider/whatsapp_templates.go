package provider

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent/schema/schematype"
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

// Header and button limits of the Cloud API.
const (
	MaxTemplateHeaderText = 60
	MaxTemplateButtons    = 10
	MaxTemplateButtonText = 25
	MaxTemplateURLButtons = 2
	MaxTemplateURL        = 2000
	// MaxTemplateButtonParameter bounds a URL suffix or a quick-reply
	// payload.
	MaxTemplateButtonParameter = 1000
)

// TemplateHeaderFormats are the header formats Parley sends: a TEXT header
// or a media one. (Meta also has LOCATION headers, which Parley does not
// fill in.)
var TemplateHeaderFormats = []string{"TEXT", "IMAGE", "VIDEO", "DOCUMENT"}

// TemplateButtonTypes are the button types Parley sends.
var TemplateButtonTypes = []string{"QUICK_REPLY", "URL", "PHONE_NUMBER"}

// CheckTemplateHeader validates a template's header as Meta registers it
// and returns it in Meta's form (format upper-case, media headers without
// text). field names the input it is about.
func CheckTemplateHeader(field string, h schematype.TemplateHeader) (schematype.TemplateHeader, error) {
	h.Format = strings.ToUpper(strings.TrimSpace(h.Format))
	if !slices.Contains(TemplateHeaderFormats, h.Format) {
		return h, apperr.Invalid(field+".format", "a header's format must be one of %s", strings.Join(TemplateHeaderFormats, ", "))
	}
	h.Text = strings.TrimSpace(h.Text)
	if h.Format != "TEXT" {
		if h.Text != "" {
			return h, apperr.Invalid(field+".text", "a %s header has no text: each message gives its media", h.Format)
		}
		return h, nil
	}
	if h.Text == "" || utf8.RuneCountInString(h.Text) > MaxTemplateHeaderText {
		return h, apperr.Invalid(field+".text", "a TEXT header has 1 to %d characters", MaxTemplateHeaderText)
	}
	if err := onlyFirstPlaceholder(field+".text", "a header", h.Text); err != nil {
		return h, err
	}
	return h, nil
}

// CheckTemplateButtons validates a template's buttons as Meta registers
// them: at most 10, QUICK_REPLY, URL (an http(s) URL that may end in one
// {{1}}, at most 2 such buttons) or PHONE_NUMBER (an E.164 number, at most
// one), each with a label.
func CheckTemplateButtons(field string, bs []schematype.TemplateButton) ([]schematype.TemplateButton, error) {
	if len(bs) > MaxTemplateButtons {
		return nil, apperr.Invalid(field, "a template has at most %d buttons", MaxTemplateButtons)
	}
	out := make([]schematype.TemplateButton, len(bs))
	urls, phones := 0, 0
	for i, b := range bs {
		f := fmt.Sprintf("%s[%d]", field, i)
		b.Type = strings.ToUpper(strings.TrimSpace(b.Type))
		b.Text, b.URL, b.PhoneNumber = strings.TrimSpace(b.Text), strings.TrimSpace(b.URL), strings.TrimSpace(b.PhoneNumber)
		if b.Text == "" || utf8.RuneCountInString(b.Text) > MaxTemplateButtonText {
			return nil, apperr.Invalid(f+".text", "button %d needs a label of 1 to %d characters", i+1, MaxTemplateButtonText)
		}
		switch b.Type {
		case "QUICK_REPLY":
			if b.URL != "" || b.PhoneNumber != "" {
				return nil, apperr.Invalid(f, "a QUICK_REPLY button has no url or phoneNumber")
			}
		case "URL":
			urls++
			if urls > MaxTemplateURLButtons {
				return nil, apperr.Invalid(f, "a template has at most %d URL buttons", MaxTemplateURLButtons)
			}
			if b.PhoneNumber != "" {
				return nil, apperr.Invalid(f+".phoneNumber", "a URL button has no phoneNumber")
			}
			u, err := url.Parse(strings.TrimSuffix(b.URL, "{{1}}"))
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(b.URL) > MaxTemplateURL {
				return nil, apperr.Invalid(f+".url", "a URL button needs an http or https URL (at most %d characters)", MaxTemplateURL)
			}
			if err := onlyFirstPlaceholder(f+".url", "a button URL", b.URL); err != nil {
				return nil, err
			}
			if strings.Contains(b.URL, "{{1}}") && !strings.HasSuffix(b.URL, "{{1}}") {
				return nil, apperr.Invalid(f+".url", "a button URL takes its {{1}} only at the end")
			}
		case "PHONE_NUMBER":
			phones++
			if phones > 1 {
				return nil, apperr.Invalid(f, "a template has at most one PHONE_NUMBER button")
			}
			if b.URL != "" {
				return nil, apperr.Invalid(f+".url", "a PHONE_NUMBER button has no url")
			}
			if !e164.MatchString(b.PhoneNumber) {
				return nil, apperr.Invalid(f+".phoneNumber", "a PHONE_NUMBER button needs an E.164 number such as +14155550100")
			}
		default:
			return nil, apperr.Invalid(f+".type", "a button's type must be one of %s", strings.Join(TemplateButtonTypes, ", "))
		}
		out[i] = b
	}
	return out, nil
}

// onlyFirstPlaceholder accepts text with no placeholder or with {{1}}
// once: headers and button URLs take one parameter at most.
func onlyFirstPlaceholder(field, what, text string) error {
	ms := placeholder.FindAllStringSubmatch(text, -1)
	if len(ms) > 1 || (len(ms) == 1 && ms[0][1] != "1") {
		return apperr.Invalid(field, "%s takes one placeholder at most, {{1}}", what)
	}
	return nil
}
