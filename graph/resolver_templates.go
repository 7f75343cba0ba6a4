package graph

import (
	"github.com/parleyhq/parley/graph/model"
	"github.com/parleyhq/parley/internal/templates"
)

// templateInput carries the fields of CreateTemplateInput (all set) or
// UpdateTemplateInput (nil = unchanged) to the templates service.
func templateInput(name, category, language, body *string) templates.Input {
	return templates.Input{Name: name, Category: category, Language: language, Body: body}
}

// templateFilter carries the templates query's filters; null filters nothing.
func templateFilter(search, category, language *string) templates.Filter {
	return templates.Filter{Search: deref(search), Category: deref(category), Language: deref(language)}
}

// deletePayload answers a delete mutation with the id that is gone.
func deletePayload(id int, err error) (*model.DeletePayload, error) {
	if err != nil {
		return nil, err
	}
	return &model.DeletePayload{DeletedID: id}, nil
}
