package graph

import (
	"github.com/99designs/gqlgen/graphql"

	"github.com/parleyhq/parley/internal/attachments"
)

// uploadedFile hands a multipart upload to the attachments service. The
// client's claimed Content-Type is deliberately dropped: the service judges
// the file by its content.
func uploadedFile(f graphql.Upload) attachments.File {
	return attachments.File{Name: f.Filename, Content: f.File}
}
