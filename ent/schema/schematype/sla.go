package schematype

import "time"

// SLANever is the SLA_DUE sort key of a conversation with nothing due: after
// every real due time. The column is non-null so that keyset paging needs no
// NULL handling, which SQLite and PostgreSQL order differently.
var SLANever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
