package schematype

// TemplateMessage is a WhatsApp template as one message sends it: the
// template's name and language, and the values of its body placeholders
// in order ({{1}} first).
type TemplateMessage struct {
	Name       string   `json:"name"`
	Language   string   `json:"language"`
	Parameters []string `json:"parameters,omitempty"`
}
