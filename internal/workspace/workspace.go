// Package workspace holds who is who and where conversations go: agents,
// their status and chat options, queues with ordered members and a polling
// strategy, and channel accounts with their routing target and provider
// credentials. Admin-only operations check the caller's role here.
package workspace

import (
	"context"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"entgo.io/contrib/entgql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/queue"
	"github.com/parleyhq/parley/ent/queuemember"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/audit"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/eventlog"
	"github.com/parleyhq/parley/internal/paging"
	"github.com/parleyhq/parley/internal/routing"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// Service manages agents, queues and channel accounts.
type Service struct {
	client    *ent.Client
	auth      *auth.Service
	publicURL string
	secrets   *secrets.Ring
	now       func() time.Time
	// StatusChanged, when set, is called after an agent's status change has
	// committed (routing offers waiting conversations to a newly AVAILABLE
	// agent).
	StatusChanged func(ctx context.Context, agentID int, status schematype.AgentStatus)
	// MoveConversations moves a deleted queue's open conversations to the
	// queue that takes them (see DeleteQueue); set by the app.
	MoveConversations MoveConversations
	// AccountChanged, when set, is called after a change of a channel
	// account has committed (the live-chat origin policy reloads).
	AccountChanged func(ctx context.Context, accountID int)
	// Deactivated, when set, is called after an agent's deactivation has
	// committed: their live offers move on and their open conversations go
	// back to their queues.
	Deactivated func(ctx context.Context, agentID int)
	// QueueChanged, when set, is called after a queue was created,
	// changed (members, name) or deleted has committed (queue wallboards
	// look again: queuelive.Nudge).
	QueueChanged func(ctx context.Context, queueID int)
	// Events, when set, is where token revocations are announced
	// (pubsub.SessionsTopic), so that every instance closes the revoked
	// tokens' websockets at once instead of at its next recheck.
	Events *eventlog.Log
}

// NewService returns the workspace service. publicURL is the externally
// visible base URL that webhook URLs are built from; ring seals the
// credentials of the channel accounts it stores.
func NewService(client *ent.Client, a *auth.Service, publicURL string, ring *secrets.Ring) *Service {
	return &Service{client: client, auth: a, publicURL: strings.TrimRight(publicURL, "/"), secrets: ring, now: time.Now}
}

// Me returns the calling agent.
func (s *Service) Me(ctx context.Context) (*ent.Agent, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.client.Agent.Get(ctx, p.AgentID)
	return a, store.Coded(err, "agent")
}

// SearchAgents lists active agents whose name or extension contains search
// (case- and accent-insensitive; the search key folds both), oldest first
// (by id: no order is asked of the pagination). Any agent may search: it is
// how a transfer target is found.
func (s *Service) SearchAgents(ctx context.Context, search *string, after *entgql.Cursor[int], first *int, before *entgql.Cursor[int], last *int) (*ent.AgentConnection, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	q := s.client.Agent.Query().Where(agent.Active(true))
	if search != nil && strings.TrimSpace(*search) != "" {
		if err := textsearch.CheckQuery(*search); err != nil {
			return nil, err
		}
		q = q.Where(textsearch.Match(agent.FieldSearchKey, *search))
	}
	first, last = paging.Clamp(first, last)
	return q.Paginate(ctx, after, first, before, last)
}

// AgentQueues lists the queues an agent is a member of, by name.
func (s *Service) AgentQueues(ctx context.Context, a *ent.Agent) ([]*ent.Queue, error) {
	return a.QueryQueues().Order(ent.Asc(queue.FieldName)).All(ctx)
}

// SetStatus sets the caller's availability.
func (s *Service) SetStatus(ctx context.Context, status schematype.AgentStatus) (*ent.Agent, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.client.Agent.UpdateOneID(p.AgentID).SetStatus(status).SetStatusChangedAt(s.now()).Save(ctx)
	if err != nil {
		return nil, store.Coded(err, "agent")
	}
	if s.StatusChanged != nil {
		s.StatusChanged(ctx, a.ID, status)
	}
	return a, nil
}

// ChatOptionsUpdate changes some of the caller's chat options; nil fields
// stay as they are.
type ChatOptionsUpdate struct {
	ShowChatIndicator, WebNotifications, PlaySound *bool
	NotificationSound                              *string
}

var soundName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$`)

// UpdateChatOptions changes the caller's chat options.
func (s *Service) UpdateChatOptions(ctx context.Context, u ChatOptionsUpdate) (*schematype.ChatOptions, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	if u.NotificationSound != nil && !soundName.MatchString(*u.NotificationSound) {
		return nil, apperr.Invalid("notificationSound", "notificationSound must be a sound name of letters, digits, spaces, '.', '_' or '-' (at most 100)")
	}
	var out schematype.ChatOptions
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		a, err := tx.Agent.Get(ctx, p.AgentID)
		if err != nil {
			return store.Coded(err, "agent")
		}
		o := a.ChatOptions
		if u.ShowChatIndicator != nil {
			o.ShowChatIndicator = *u.ShowChatIndicator
		}
		if u.WebNotifications != nil {
			o.WebNotifications = *u.WebNotifications
		}
		if u.PlaySound != nil {
			o.PlaySound = *u.PlaySound
		}
		if u.NotificationSound != nil {
			o.NotificationSound = *u.NotificationSound
		}
		out = o
		return store.Coded(tx.Agent.UpdateOneID(a.ID).SetChatOptions(o).Exec(ctx), "agent")
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// NewAgent is what CreateAgent needs.
type NewAgent struct {
	Name, Email, Extension string
	Role                   schematype.Role
	Password               string
	MaxConcurrentChats     *int
}

var extensionRe = regexp.MustCompile(`^[0-9]{1,20}$`)

// CreateAgent adds an agent. Admins may create agents up to ADMIN; only a
// SYSTEM_OWNER may create another SYSTEM_OWNER.
func (s *Service) CreateAgent(ctx context.Context, in NewAgent) (*ent.Agent, error) {
	p, err := auth.Admin(ctx)
	if err != nil {
		return nil, err
	}
	if in.Role == schematype.RoleSystemOwner && p.Role != schematype.RoleSystemOwner {
		return nil, apperr.New(apperr.Forbidden, "only a system owner may create a system owner")
	}
	return s.CreateAgentUnchecked(ctx, in)
}

// CreateAgentUnchecked adds an agent without looking at the caller: for
// bootstrapping (the first system owner, the create-agent command, the demo).
func (s *Service) CreateAgentUnchecked(ctx context.Context, in NewAgent) (*ent.Agent, error) {
	name, err := checkName(in.Name)
	if err != nil {
		return nil, err
	}
	email, err := checkEmail(in.Email)
	if err != nil {
		return nil, err
	}
	ext, err := checkExtension(in.Extension)
	if err != nil {
		return nil, err
	}
	if err := validateRole(in.Role); err != nil {
		return nil, err
	}
	maxChats := 5
	if in.MaxConcurrentChats != nil {
		if maxChats, err = checkMaxChats(*in.MaxConcurrentChats); err != nil {
			return nil, err
		}
	}
	hash, err := s.auth.HashPassword(in.Password)
	if err != nil {
		return nil, err
	}
	var a *ent.Agent
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		// Email and extension are the unique columns: say which one is
		// taken. Looked up before the insert because a PostgreSQL
		// transaction cannot run a query after a failed statement.
		if taken, err := tx.Agent.Query().Where(agent.Email(email)).Exist(ctx); err != nil {
			return err
		} else if taken {
			return apperr.Taken("email", "an agent with email %s exists", email)
		}
		if taken, err := tx.Agent.Query().Where(agent.Extension(ext)).Exist(ctx); err != nil {
			return err
		} else if taken {
			return apperr.Taken("extension", "extension %s is taken", ext)
		}
		a, err = tx.Agent.Create().
			SetName(name).SetEmail(email).SetExtension(ext).SetRole(in.Role).
			SetPasswordHash(hash).SetMaxConcurrentChats(maxChats).
			SetSearchKey(textsearch.Key(name, ext)).
			Save(ctx)
		if ent.IsConstraintError(err) {
			// A concurrent create took the email or extension.
			return apperr.New(apperr.Conflict, "the email or extension was just taken by another agent")
		}
		if err != nil {
			return store.Coded(err, "agent")
		}
		return audit.Record(ctx, tx, audit.Change{Action: "agent.create", TargetID: a.ID, After: stateOf(a)})
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// checkName, checkEmail, checkExtension and checkMaxChats validate (and
// normalise) an agent's fields, for createAgent and updateAgent alike.
func checkName(in string) (string, error) {
	name := strings.TrimSpace(in)
	if name == "" || utf8.RuneCountInString(name) > 200 {
		return "", apperr.Invalid("name", "name must have 1 to 200 characters")
	}
	return name, nil
}

func checkEmail(in string) (string, error) {
	email := auth.NormalizeEmail(in)
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email {
		return "", apperr.Invalid("email", "%q is not an email address", in)
	}
	return email, nil
}

func checkExtension(in string) (string, error) {
	ext := strings.TrimSpace(in)
	if !extensionRe.MatchString(ext) {
		return "", apperr.Invalid("extension", "extension must be 1 to 20 digits")
	}
	return ext, nil
}

func checkMaxChats(n int) (int, error) {
	if n < 1 || n > 1000 {
		return 0, apperr.Invalid("maxConcurrentChats", "maxConcurrentChats must be between 1 and 1000")
	}
	return n, nil
}

func validateRole(r schematype.Role) error {
	for _, v := range r.Values() {
		if string(r) == v {
			return nil
		}
	}
	return apperr.Invalid("role", "unknown role %q", r)
}

// AnyAgents reports whether the workspace has any agent (a fresh database
// has none, and gets its first system owner from the environment).
func (s *Service) AnyAgents(ctx context.Context) (bool, error) {
	return s.client.Agent.Query().Exist(ctx)
}

// Member is a queue member in an input.
type Member struct {
	AgentID  int
	Priority int
}

// QueueInput creates (all but Name and Strategy optional) or updates (nil =
// unchanged) a queue. Members, when given, replace the whole list.
type QueueInput struct {
	Name                *string
	Strategy            *schematype.PollingStrategy
	OfferTimeoutSeconds *int
	Description         *string
	// OwnerAwayTimeoutSeconds: MinOwnerAway to MaxOwnerAway seconds, 0 =
	// off (routing, issue 11).
	OwnerAwayTimeoutSeconds *int
	// ServiceLevelSeconds: the first-reply target, 1 to 86400 seconds, 0 =
	// none (issue 13).
	ServiceLevelSeconds *int
	Members             []Member
	MembersSet          bool
}

// CreateQueue adds a queue (admins only).
func (s *Service) CreateQueue(ctx context.Context, in QueueInput) (*ent.Queue, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return nil, err
	}
	if in.Name == nil || in.Strategy == nil {
		return nil, apperr.Invalid("name", "name and strategy are required")
	}
	var id int
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		c := tx.Queue.Create().SetOfferTimeoutSeconds(30)
		if err := s.applyQueue(in, c.Mutation()); err != nil {
			return err
		}
		q, err := c.Save(ctx)
		if err != nil {
			return queueErr(err, in)
		}
		id = q.ID
		if err := s.setMembers(ctx, tx, q.ID, in); err != nil {
			return err
		}
		return auditQueue(ctx, tx, "queue.create", q.ID, nil)
	})
	if err != nil {
		return nil, err
	}
	s.queueChanged(ctx, id)
	q, err := s.client.Queue.Get(ctx, id)
	return q, store.Coded(err, "queue")
}

// UpdateQueue changes a queue (admins only).
func (s *Service) UpdateQueue(ctx context.Context, id int, in QueueInput) (*ent.Queue, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return nil, err
	}
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		before, err := queueState(ctx, tx, id)
		if err != nil {
			return err
		}
		u := tx.Queue.UpdateOneID(id)
		if err := s.applyQueue(in, u.Mutation()); err != nil {
			return err
		}
		if err := u.Exec(ctx); err != nil {
			return queueErr(err, in)
		}
		if err := s.setMembers(ctx, tx, id, in); err != nil {
			return err
		}
		if in.ServiceLevelSeconds != nil && *in.ServiceLevelSeconds != before.ServiceLevelSeconds {
			// The waiting conversations are due by the new target.
			if err := stats.Retarget(ctx, tx, id, *in.ServiceLevelSeconds); err != nil {
				return err
			}
		}
		return auditQueue(ctx, tx, "queue.update", id, before)
	})
	if err != nil {
		return nil, err
	}
	s.queueChanged(ctx, id)
	q, err := s.client.Queue.Get(ctx, id)
	return q, store.Coded(err, "queue")
}

func (s *Service) queueChanged(ctx context.Context, id int) {
	if s.QueueChanged != nil {
		s.QueueChanged(ctx, id)
	}
}

func (s *Service) applyQueue(in QueueInput, m *ent.QueueMutation) error {
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if name == "" || utf8.RuneCountInString(name) > 200 {
			return apperr.Invalid("name", "name must have 1 to 200 characters")
		}
		m.SetName(name)
	}
	if in.Strategy != nil {
		valid := false
		for _, v := range in.Strategy.Values() {
			valid = valid || v == string(*in.Strategy)
		}
		if !valid {
			return apperr.Invalid("strategy", "unknown strategy %q", *in.Strategy)
		}
		m.SetStrategy(*in.Strategy)
	}
	if in.OfferTimeoutSeconds != nil {
		if t := *in.OfferTimeoutSeconds; t < 5 || t > 3600 {
			return apperr.Invalid("offerTimeoutSeconds", "offerTimeoutSeconds must be between 5 and 3600")
		}
		m.SetOfferTimeoutSeconds(*in.OfferTimeoutSeconds)
	}
	if in.Description != nil {
		d := strings.TrimSpace(*in.Description)
		if utf8.RuneCountInString(d) > 1000 {
			return apperr.Invalid("description", "description must have at most 1000 characters")
		}
		m.SetDescription(d)
	}
	if in.ServiceLevelSeconds != nil {
		if t := *in.ServiceLevelSeconds; t < 0 || t > MaxServiceLevel {
			return apperr.Invalid("serviceLevelSeconds", "serviceLevelSeconds must be 0 (none) or between 1 and %d", MaxServiceLevel)
		}
		m.SetServiceLevelSeconds(*in.ServiceLevelSeconds)
	}
	return applyOwnerAway(in.OwnerAwayTimeoutSeconds, m)
}

// ServiceLevel is q's first-reply target in seconds, nil when it has none.
func (s *Service) ServiceLevel(q *ent.Queue) *int {
	if q.ServiceLevelSeconds == 0 {
		return nil
	}
	return &q.ServiceLevelSeconds
}

// MaxServiceLevel is the longest first-reply target, in seconds (a day).
const MaxServiceLevel = 86400

// applyOwnerAway sets a queue's owner-away timeout: 0 turns it off.
func applyOwnerAway(secs *int, m *ent.QueueMutation) error {
	lo, hi := int(routing.MinOwnerAway.Seconds()), int(routing.MaxOwnerAway.Seconds())
	switch {
	case secs == nil:
	case *secs == 0:
		m.ClearOwnerAwayTimeoutSeconds()
	case *secs < lo || *secs > hi:
		return apperr.Invalid("ownerAwayTimeoutSeconds", "ownerAwayTimeoutSeconds must be 0 (off) or between %d and %d", lo, hi)
	default:
		m.SetOwnerAwayTimeoutSeconds(*secs)
	}
	return nil
}

func (s *Service) setMembers(ctx context.Context, tx *ent.Tx, queueID int, in QueueInput) error {
	if !in.MembersSet {
		return nil
	}
	seenAgent := map[int]bool{}
	seenPrio := map[int]bool{}
	for _, m := range in.Members {
		if m.Priority < 1 {
			return apperr.Invalid("members", "priority must be 1 or more")
		}
		if seenAgent[m.AgentID] {
			return apperr.Invalid("members", "agent %d is listed twice", m.AgentID)
		}
		if seenPrio[m.Priority] {
			return apperr.Invalid("members", "priority %d is given twice", m.Priority)
		}
		seenAgent[m.AgentID], seenPrio[m.Priority] = true, true
	}
	ids := make([]int, 0, len(in.Members))
	for _, m := range in.Members {
		ids = append(ids, m.AgentID)
	}
	n, err := tx.Agent.Query().Where(agent.IDIn(ids...), agent.Active(true)).Count(ctx)
	if err != nil {
		return err
	}
	if n != len(ids) {
		return apperr.Invalid("members", "every member must be an existing, active agent")
	}
	if _, err := tx.QueueMember.Delete().Where(queuemember.QueueID(queueID)).Exec(ctx); err != nil {
		return err
	}
	bulk := make([]*ent.QueueMemberCreate, 0, len(in.Members))
	for _, m := range in.Members {
		bulk = append(bulk, tx.QueueMember.Create().SetQueueID(queueID).SetAgentID(m.AgentID).SetPriority(m.Priority))
	}
	return store.Coded(tx.QueueMember.CreateBulk(bulk...).Exec(ctx), "queue member")
}

// queueErr codes what ent refuses of a queue: a taken name (the one unique
// column) as a CONFLICT on the name.
func queueErr(err error, in QueueInput) error {
	if ent.IsConstraintError(err) && in.Name != nil {
		return apperr.Taken("name", "a queue named %q exists", *in.Name)
	}
	return store.Coded(err, "queue")
}

// Queues lists every queue, by name. Any agent may list them.
func (s *Service) Queues(ctx context.Context) ([]*ent.Queue, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	return s.client.Queue.Query().Order(ent.Asc(queue.FieldName)).All(ctx)
}

// Members lists a queue's members by priority.
func (s *Service) Members(ctx context.Context, q *ent.Queue) ([]*ent.QueueMember, error) {
	return q.QueryMembers().Order(ent.Asc(queuemember.FieldPriority)).WithAgent().All(ctx)
}
