package stats

import (
	"context"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/queue"
	"github.com/parleyhq/parley/ent/queuemember"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
)

// MaySupervise is the rule of who may watch a queue's figures (queueStats,
// queueEvents, issue 13): admins and system owners every queue, group
// owners the queues they are members of, agents none. It is the one home
// of that rule; [Supervisor] and [Supervising] apply it to what is stored.
func MaySupervise(role schematype.Role, member bool) bool {
	switch role {
	case schematype.RoleAdmin, schematype.RoleSystemOwner:
		return true
	case schematype.RoleGroupOwner:
		return member
	}
	return false
}

// Supervisor returns the calling agent when they may supervise queueID:
// NOT_FOUND for a queue that does not exist (any agent may list queues, so
// that reveals nothing), FORBIDDEN for a caller the rule refuses. The role
// and the membership are read from the database, not from the token, so a
// demotion or a removal from the queue counts at once.
func Supervisor(ctx context.Context, client *ent.Client, queueID int) (auth.Principal, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return p, err
	}
	ok, err := client.Queue.Query().Where(queue.ID(queueID)).Exist(ctx)
	if err != nil {
		return p, err
	}
	if !ok {
		return p, apperr.NotFoundf("queue")
	}
	may, err := Supervising(ctx, client, queueID, []int{p.AgentID})
	if err != nil {
		return p, err
	}
	if !may[p.AgentID] {
		return p, apperr.New(apperr.Forbidden, "only admins, and group owners of this queue, may see its figures")
	}
	return p, nil
}

// Supervising says which of agentIDs may supervise queueID now (live
// streams re-authorise their subscribers with it at each delivery), in two
// queries whatever their number. Deactivated agents may not.
func Supervising(ctx context.Context, client *ent.Client, queueID int, agentIDs []int) (map[int]bool, error) {
	out := make(map[int]bool, len(agentIDs))
	if len(agentIDs) == 0 {
		return out, nil
	}
	agents, err := client.Agent.Query().Where(agent.IDIn(agentIDs...), agent.Active(true)).
		Select(agent.FieldID, agent.FieldRole).All(ctx)
	if err != nil {
		return nil, err
	}
	members, err := client.QueueMember.Query().
		Where(queuemember.QueueID(queueID), queuemember.AgentIDIn(agentIDs...)).
		Select(queuemember.FieldAgentID).Ints(ctx)
	if err != nil {
		return nil, err
	}
	member := make(map[int]bool, len(members))
	for _, id := range members {
		member[id] = true
	}
	for _, a := range agents {
		out[a.ID] = MaySupervise(a.Role, member[a.ID])
	}
	return out, nil
}
