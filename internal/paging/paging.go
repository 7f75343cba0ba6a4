// Package paging clamps Relay pagination arguments: entgql applies no limit
// of its own, so without this a client could ask for a whole table.
package paging

// Default and Max page sizes.
const (
	Default = 20
	Max     = 100
)

// Clamp returns first/last with a default when neither is given and both
// capped at Max; negative values become zero.
func Clamp(first, last *int) (*int, *int) {
	if first == nil && last == nil {
		d := Default
		return &d, nil
	}
	return clamp(first), clamp(last)
}

func clamp(n *int) *int {
	if n == nil {
		return nil
	}
	v := *n
	if v < 0 {
		v = 0
	}
	if v > Max {
		v = Max
	}
	return &v
}
