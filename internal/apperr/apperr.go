// Package apperr defines Parley's typed domain errors. Services return them;
// the GraphQL error presenter turns their Code into extensions.code. Anything
// that is not an *Error reaches clients only as "internal error", so raw SQL,
// Redis or provider errors never leak.
package apperr

import (
	"errors"
	"fmt"
)

// Code is the machine-readable error class clients switch on.
type Code string

// Codes of the client contract, plus INTERNAL.
const (
	Unauthenticated Code = "UNAUTHENTICATED"
	Forbidden       Code = "FORBIDDEN"
	NotFound        Code = "NOT_FOUND"
	Conflict        Code = "CONFLICT"
	BadUserInput    Code = "BAD_USER_INPUT"
	RateLimited     Code = "RATE_LIMITED"
	Internal        Code = "INTERNAL"
	// PasswordChangeRequired: the caller logged in with a one-time password
	// (an admin's reset) and must call changePassword first; me and logout
	// still work.
	PasswordChangeRequired Code = "PASSWORD_CHANGE_REQUIRED"
)

// Error is a domain error with a code and a message safe to show a client.
type Error struct {
	Code    Code
	Message string
	// Field names the input field at fault, for BAD_USER_INPUT (and for a
	// CONFLICT over a value that must be unique).
	Field string
	// Err is the underlying cause, kept for logs only.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap exposes the cause to errors.Is/As.
func (e *Error) Unwrap() error { return e.Err }

// New returns an error with a code and a client-safe message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid reports bad input in one field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: BadUserInput, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Taken reports a value that must be unique and another entity already
// has, naming the input field (CONFLICT).
func Taken(field, format string, args ...any) *Error {
	return &Error{Code: Conflict, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf reports a missing (or invisible) entity. Entities the caller may
// not see answer exactly like missing ones, so their existence is not leaked.
func NotFoundf(what string) *Error { return &Error{Code: NotFound, Message: what + " not found"} }

// Wrap attaches a cause to a coded error, for logs.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// CodeOf returns the code of err, or Internal when it carries none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Is reports whether err carries code.
func Is(err error, code Code) bool { return CodeOf(err) == code }

// Common errors.
var (
	ErrUnauthenticated = New(Unauthenticated, "authentication required")
	ErrForbidden       = New(Forbidden, "not allowed")
)
