// Package seed fills an empty database: the first system owner from the
// environment, and the demo workspace that `make run` shows a newcomer.
package seed

import (
	"context"
	"fmt"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/templates"
	"github.com/parleyhq/parley/internal/workspace"
)

// DemoPassword is the password of every demo login.
const DemoPassword = "parley-demo"

// Login is one demo login to print.
type Login struct {
	Email, Role, Name, Extension string
}

// DemoAgents are the demo workspace's people.
var DemoAgents = []workspace.NewAgent{
	{Name: "Olivia Owner", Email: "owner@demo.parley.chat", Extension: "100", Role: schematype.RoleSystemOwner},
	{Name: "Adam Admin", Email: "admin@demo.parley.chat", Extension: "101", Role: schematype.RoleAdmin},
	{Name: "Gloria Group", Email: "gloria@demo.parley.chat", Extension: "102", Role: schematype.RoleGroupOwner},
	{Name: "Ana García", Email: "ana@demo.parley.chat", Extension: "201", Role: schematype.RoleAgent},
	{Name: "Ben Okafor", Email: "ben@demo.parley.chat", Extension: "202", Role: schematype.RoleAgent},
	{Name: "Chloé Martin", Email: "chloe@demo.parley.chat", Extension: "203", Role: schematype.RoleAgent},
}

// Demo seeds the demo workspace: agents with extensions, two queues, a
// live-chat account and some templates. It returns the logins to print.
func Demo(ctx context.Context, client *ent.Client, ws *workspace.Service) ([]Login, error) {
	var logins []Login
	ids := map[string]int{}
	var ownerID int
	for _, a := range DemoAgents {
		a.Password = DemoPassword
		created, err := ws.CreateAgentUnchecked(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("demo agent %s: %w", a.Email, err)
		}
		ids[a.Extension] = created.ID
		if a.Role == schematype.RoleSystemOwner {
			ownerID = created.ID
		}
		logins = append(logins, Login{Email: a.Email, Role: string(a.Role), Name: a.Name, Extension: a.Extension})
	}
	// The rest goes through the admin operations, as the owner.
	actx := auth.WithPrincipal(ctx, auth.Principal{AgentID: ownerID, Role: schematype.RoleSystemOwner})
	name := func(s string) *string { return &s }
	strategy := func(s schematype.PollingStrategy) *schematype.PollingStrategy { return &s }
	timeout := 30
	sales, err := ws.CreateQueue(actx, workspace.QueueInput{
		Name: name("Sales"), Strategy: strategy(schematype.StrategyRingAll), OfferTimeoutSeconds: &timeout,
		MembersSet: true,
		Members:    []workspace.Member{{AgentID: ids["201"], Priority: 1}, {AgentID: ids["202"], Priority: 2}},
	})
	if err != nil {
		return nil, fmt.Errorf("demo queue: %w", err)
	}
	if _, err := ws.CreateQueue(actx, workspace.QueueInput{
		Name: name("Support"), Strategy: strategy(schematype.StrategyHunt), OfferTimeoutSeconds: &timeout,
		MembersSet: true,
		Members: []workspace.Member{
			{AgentID: ids["203"], Priority: 1}, {AgentID: ids["201"], Priority: 2}, {AgentID: ids["102"], Priority: 3},
		},
	}); err != nil {
		return nil, fmt.Errorf("demo queue: %w", err)
	}
	if _, err := ws.CreateChannelAccount(actx, workspace.NewChannelAccount{
		Channel: schematype.ChannelLiveChat, Name: "Website chat", QueueID: &sales.ID, GivenLiveChat: true,
	}); err != nil {
		return nil, fmt.Errorf("demo channel account: %w", err)
	}
	tmpl := templates.NewService(client)
	for _, t := range demoTemplates {
		if _, err := tmpl.Create(actx, templates.Input{Name: &t[0], Category: &t[1], Language: &t[2], Body: &t[3]}); err != nil {
			return nil, fmt.Errorf("demo template: %w", err)
		}
	}
	return logins, nil
}

var demoTemplates = [][4]string{
	{"Greeting", "General", "en", "Hello! Thanks for getting in touch. How can I help you today?"},
	{"Saludo", "General", "es", "¡Hola! Gracias por escribirnos. ¿En qué podemos ayudarle?"},
	{"Salutation", "General", "fr", "Bonjour ! Merci de nous avoir contactés. Comment puis-je vous aider ?"},
	{"Opening hours", "Sales", "en", "We are open Monday to Friday, 9:00 to 18:00."},
	{"Horario", "Sales", "es", "Abrimos de lunes a viernes, de 9:00 a 18:00."},
	{"Refund policy", "Support", "en", "You can return any item within 30 days for a full refund."},
	{"Closing", "General", "en", "Is there anything else I can help you with?"},
}
