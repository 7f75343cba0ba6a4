package apitest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/attachments"
	"github.com/parleyhq/parley/internal/attachments/attachmenttest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

type attOut struct {
	ID, Filename, ContentType, URL string
	Size                           int
}

// uploadOK uploads through the multipart transport and fails the test on
// any error.
func uploadOK(t *testing.T, c *apitest.Client, name, claimed string, data []byte) attOut {
	t.Helper()
	r := c.Upload(t, name, claimed, data)
	if len(r.Errors) > 0 {
		t.Fatalf("upload %s: %s", name, r.Raw)
	}
	var out struct{ UploadAttachment attOut }
	r.Decode(t, &out)
	return out.UploadAttachment
}

// storedFiles lists every file under the server's attachments directory
// (temporary files included).
func storedFiles(t *testing.T, s *apitest.Server) []string {
	t.Helper()
	var out []string
	root := filepath.Join(s.App.Config.DataDir, "attachments")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func attachmentRows(t *testing.T, s *apitest.Server) int {
	t.Helper()
	n, err := s.App.DB.Client.Attachment.Query().Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func filePath(s *apitest.Server, data []byte) string {
	h := sha256.Sum256(data)
	return s.App.Attachments.Storage().(*attachments.LocalStore).Path(hex.EncodeToString(h[:]))
}

func fileExists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Stat(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestUploadAllowedKinds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		token, agentID := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
		c := s.Client().As(token)
		ctx := context.Background()
		for _, smp := range attachmenttest.Allowed() {
			t.Run(smp.Name, func(t *testing.T) {
				// The claimed type is a lie for half of them: it plays no part.
				got := uploadOK(t, c, smp.Name, "application/octet-stream", smp.Data)
				if got.ContentType != smp.Want || got.Size != len(smp.Data) || got.Filename != smp.Name {
					t.Fatalf("stored %+v, want %s of %d bytes named %s", got, smp.Want, len(smp.Data), smp.Name)
				}
				row, err := s.App.DB.Client.Attachment.Get(ctx, apitest.Atoi(t, got.ID))
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(smp.Data)
				if row.Sha256 != hex.EncodeToString(sum[:]) || row.UploaderAgentID == nil ||
					strconv.Itoa(*row.UploaderAgentID) != agentID || row.UploaderConversationID != nil {
					t.Fatalf("row %+v", row)
				}
				onDisk, err := os.ReadFile(filePath(s, smp.Data))
				if err != nil || !bytes.Equal(onDisk, smp.Data) {
					t.Fatalf("stored file: %v", err)
				}
			})
		}

		t.Run("name and type from content", func(t *testing.T) {
			got := uploadOK(t, c, "photo.pdf", "application/pdf", attachmenttest.PNG())
			if got.ContentType != "image/png" || got.Filename != "photo.png" {
				t.Fatalf("a PNG named photo.pdf: %+v", got)
			}
			got = uploadOK(t, c, `C:\fakepath\año — informe.pdf`, "application/pdf", attachmenttest.PDF())
			if got.Filename != "año — informe.pdf" {
				t.Fatalf("a Windows path with accents: %+v", got)
			}
		})

		t.Run("identical content stored once", func(t *testing.T) {
			data := []byte("el mismo contenido, dos veces\n")
			before := len(storedFiles(t, s))
			a := uploadOK(t, c, "uno.txt", "text/plain", data)
			b := uploadOK(t, c, "dos.txt", "text/plain", data)
			if a.ID == b.ID {
				t.Fatal("two uploads share a row")
			}
			if n := len(storedFiles(t, s)); n != before+1 {
				t.Fatalf("%d files after two identical uploads, want %d", n, before+1)
			}
		})
	})
}

func TestUploadRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		token, _ := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
		c := s.Client().As(token)
		overLimit := bytes.Repeat([]byte("a"), 25<<20+1)
		cases := append(attachmenttest.Refused(),
			attachmenttest.Sample{Name: "empty.txt", Claimed: "text/plain"},
			attachmenttest.Sample{Name: "big.txt", Claimed: "text/plain", Data: overLimit},
		)
		for _, smp := range cases {
			t.Run(smp.Name, func(t *testing.T) {
				r := c.Upload(t, smp.Name, smp.Claimed, smp.Data)
				wantCode(t, r, "BAD_USER_INPUT", smp.Name)
				if n := attachmentRows(t, s); n != 0 {
					t.Fatalf("%d rows stored", n)
				}
				if f := storedFiles(t, s); len(f) != 0 {
					t.Fatalf("files stored: %v", f)
				}
			})
		}
		t.Run("no caller", func(t *testing.T) {
			wantCode(t, s.Client().Upload(t, "a.txt", "text/plain", []byte("hola")), "UNAUTHENTICATED", "no token")
			wantCode(t, s.Client().As("plt_not-a-token").Upload(t, "a.txt", "text/plain", []byte("hola")), "UNAUTHENTICATED", "bad token")
			if n := attachmentRows(t, s); n != 0 {
				t.Fatalf("%d rows stored", n)
			}
		})
	})
}

func TestUploadConfiguredLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true, Env: map[string]string{"PARLEY_MAX_UPLOAD_BYTES": "1024"}})
		token, _ := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
		c := s.Client().As(token)
		if got := uploadOK(t, c, "justo.txt", "text/plain", bytes.Repeat([]byte("x"), 1024)); got.Size != 1024 {
			t.Fatalf("at the limit: %+v", got)
		}
		wantCode(t, c.Upload(t, "uno-mas.txt", "text/plain", bytes.Repeat([]byte("x"), 1025)), "BAD_USER_INPUT", "one byte over")
		if n := attachmentRows(t, s); n != 1 {
			t.Fatalf("%d rows", n)
		}
	})
}

// download fetches u as c (c's token, if any) and returns the response and
// body.
func download(t *testing.T, c *apitest.Client, u string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	return c.Get(t, u, header)
}

func plain(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p.RawQuery = ""
	return p.String()
}

func withQuery(t *testing.T, u, query string) string {
	t.Helper()
	return plain(t, u) + "?" + query
}

type attConv struct {
	Conversation struct {
		Messages struct {
			Edges []struct {
				Node struct {
					ID, Body    string
					Attachments []attOut
				}
			}
		}
	}
}

func TestAttachmentSendAndDownload(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		convID := w.Inbound(t, w.WhatsApp, "34600999000", "¿Me mandan la factura?")
		pngData, pdfData, docxData := attachmenttest.PNG(), attachmenttest.PDF(), attachmenttest.OOXML("word/document.xml")
		png := uploadOK(t, w.Ana.C, "logo.png", "image/png", pngData)
		pdf := uploadOK(t, w.Ana.C, "año — factura.pdf", "application/pdf", pdfData)
		docx := uploadOK(t, w.Ana.C, "carta.docx", "application/octet-stream", docxData)

		// Someone else's upload cannot be attached.
		bens := uploadOK(t, w.Ben.C, "de-ben.txt", "text/plain", []byte("de Ben\n"))
		r := w.Ana.C.Op(t, "SendMessage", map[string]any{"input": map[string]any{
			"conversationID": convID, "body": "Aquí está", "attachmentIDs": []string{png.ID, bens.ID},
		}})
		wantCode(t, r, "BAD_USER_INPUT", "attaching Ben's upload")

		var sent struct {
			SendMessage struct {
				Message struct {
					ID          string
					Attachments []attOut
				}
			}
		}
		w.Ana.C.MustOp(t, "SendMessage", map[string]any{"input": map[string]any{
			"conversationID": convID, "body": "Aquí está", "attachmentIDs": []string{png.ID, pdf.ID, docx.ID},
		}}, &sent)
		if n := len(sent.SendMessage.Message.Attachments); n != 3 {
			t.Fatalf("the sent message has %d attachments", n)
		}
		// An attachment is sent once.
		r = w.Ana.C.Op(t, "SendMessage", map[string]any{"input": map[string]any{
			"conversationID": convID, "body": "Otra vez", "attachmentIDs": []string{pdf.ID},
		}})
		wantCode(t, r, "BAD_USER_INPUT", "sending an attachment twice")

		var conv attConv
		w.Ana.C.MustOp(t, "Conversation", map[string]any{"id": convID, "last": 10}, &conv)
		var got map[string]attOut
		for _, e := range conv.Conversation.Messages.Edges {
			if e.Node.ID == sent.SendMessage.Message.ID {
				got = map[string]attOut{}
				for _, a := range e.Node.Attachments {
					got[a.ID] = a
				}
			}
		}
		want := map[string]struct {
			name, typ, disp, csp string
			data                 []byte
		}{
			png.ID:  {"logo.png", "image/png", "inline", "sandbox", pngData},
			pdf.ID:  {"año — factura.pdf", "application/pdf", "inline", "sandbox allow-scripts", pdfData},
			docx.ID: {"carta.docx", attachments.KindDOCX.MIME, "attachment", "sandbox", docxData},
		}
		if len(got) != len(want) {
			t.Fatalf("the conversation shows %+v", got)
		}
		for id, wa := range want {
			a := got[id]
			if a.Filename != wa.name || a.ContentType != wa.typ || a.Size != len(wa.data) {
				t.Fatalf("attachment %s: %+v", id, a)
			}
			prefix := s.URL + "/attachments/" + id + "/" + url.PathEscape(wa.name) + "?"
			if !strings.HasPrefix(a.URL, prefix) || !strings.Contains(a.URL, "exp=") || !strings.Contains(a.URL, "sig=") {
				t.Fatalf("url %s, want %s…exp=…&sig=…", a.URL, prefix)
			}
			// The url works by itself, for an <img> or a provider.
			resp, body := download(t, s.Client(), a.URL, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, wa.data) {
				t.Fatalf("GET %s: %d", a.URL, resp.StatusCode)
			}
			h := resp.Header
			wantHeaders := map[string]string{
				"Content-Type":           wa.typ,
				"Content-Length":         strconv.Itoa(len(wa.data)),
				"X-Content-Type-Options": "nosniff",
			}
			for k, v := range wantHeaders {
				if h.Get(k) != v {
					t.Errorf("%s: %s = %q, want %q", wa.name, k, h.Get(k), v)
				}
			}
			if !strings.HasPrefix(h.Get("Content-Disposition"), wa.disp+`; filename="`) ||
				!strings.Contains(h.Get("Content-Disposition"), "filename*=UTF-8''"+url.PathEscape(wa.name)) {
				t.Errorf("%s: Content-Disposition %q", wa.name, h.Get("Content-Disposition"))
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, wa.csp) || (wa.csp == "sandbox" && strings.Contains(csp, "allow-")) {
				t.Errorf("%s: Content-Security-Policy %q", wa.name, csp)
			}
			if cc := h.Get("Cache-Control"); !strings.Contains(cc, "private") || strings.Contains(cc, "public") {
				t.Errorf("%s: Cache-Control %q", wa.name, cc)
			}
		}

		pngURL := got[png.ID].URL
		missing := s.URL + "/attachments/999999999/x.png"
		_, notFoundBody := download(t, w.Ana.C, missing, nil)

		t.Run("the owner with a token", func(t *testing.T) {
			resp, body := download(t, w.Ana.C, plain(t, pngURL), nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, pngData) {
				t.Fatalf("status %d", resp.StatusCode)
			}
			etag := resp.Header.Get("ETag")
			resp, _ = download(t, w.Ana.C, plain(t, pngURL), http.Header{"If-None-Match": {etag}})
			if etag == "" || resp.StatusCode != http.StatusNotModified {
				t.Fatalf("If-None-Match %q: %d", etag, resp.StatusCode)
			}
			resp, body = download(t, w.Ana.C, plain(t, pngURL), http.Header{"Range": {"bytes=0-3"}})
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, pngData[:4]) {
				t.Fatalf("Range: %d %q", resp.StatusCode, body)
			}
			// An admin sees every conversation, and so its files.
			if resp, _ := download(t, w.Admin.C, plain(t, pngURL), nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("admin: %d", resp.StatusCode)
			}
		})

		t.Run("everyone else gets the missing attachment's 404", func(t *testing.T) {
			sig := url.Values{}
			if p, err := url.Parse(pngURL); err == nil {
				sig = p.Query()
			}
			exp, _ := strconv.ParseInt(sig.Get("exp"), 10, 64)
			tampered := []byte(sig.Get("sig"))
			tampered[0] ^= 1
			signer := s.App.Attachments.Signer()
			cases := []struct {
				name string
				c    *apitest.Client
				url  string
			}{
				{"Ben, in the queue but not the owner", w.Ben.C, plain(t, pngURL)},
				{"Dan, in no queue", w.Dan.C, plain(t, pngURL)},
				{"no token", s.Client(), plain(t, pngURL)},
				{"a bad token", s.Client().As("plt_not-a-token"), plain(t, pngURL)},
				{"a token in the query", s.Client(), plain(t, pngURL) + "?token=" + w.Ana.Token},
				{"an expired signature", s.Client(), withQuery(t, pngURL, signer.Sign(apitest.Atoi(t, png.ID), -time.Minute))},
				{"a tampered signature", s.Client(), withQuery(t, pngURL, url.Values{"exp": {sig.Get("exp")}, "sig": {string(tampered)}}.Encode())},
				{"a later expiry", s.Client(), withQuery(t, pngURL, url.Values{"exp": {strconv.FormatInt(exp+86400, 10)}, "sig": {sig.Get("sig")}}.Encode())},
				{"another attachment's signature", s.Client(), withQuery(t, pngURL, signer.Sign(apitest.Atoi(t, pdf.ID), time.Hour))},
				{"not an id", w.Ana.C, s.URL + "/attachments/abc/x.png"},
			}
			for _, c := range cases {
				resp, body := download(t, c.c, c.url, nil)
				if resp.StatusCode != http.StatusNotFound || !bytes.Equal(body, notFoundBody) {
					t.Errorf("%s: %d %q, want 404 %q", c.name, resp.StatusCode, body, notFoundBody)
				}
			}
		})

		t.Run("an upload not yet sent is its uploader's", func(t *testing.T) {
			u := s.URL + "/attachments/" + bens.ID + "/de-ben.txt"
			resp, body := download(t, w.Ben.C, u, nil)
			if resp.StatusCode != http.StatusOK || string(body) != "de Ben\n" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Fatalf("Ben: %d %q %s", resp.StatusCode, body, resp.Header.Get("Content-Type"))
			}
			if resp, _ := download(t, w.Ana.C, u, nil); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("Ana: %d", resp.StatusCode)
			}
		})
	})
}

// startVisitor starts a live chat on account and returns a client with the
// visitor's token and the conversation id.
func startVisitor(t *testing.T, s *apitest.Server, account, name string) (*apitest.Client, string) {
	t.Helper()
	var out struct {
		StartLiveChat struct {
			VisitorToken string
			Conversation struct{ ID string }
		}
	}
	s.Client().MustOp(t, "StartLiveChat", map[string]any{"input": map[string]any{"channelAccountID": account, "name": name}}, &out)
	return s.Client().As(out.StartLiveChat.VisitorToken), out.StartLiveChat.Conversation.ID
}

func TestAttachmentVisitorUploads(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		visitor, convID := startVisitor(t, s, w.LiveChat, "Lucía")
		other, _ := startVisitor(t, s, w.LiveChat, "Otro")

		jpg := attachmenttest.JPEG()
		up := uploadOK(t, visitor, "foto.jpg", "image/jpeg", jpg)
		row, err := s.App.DB.Client.Attachment.Get(context.Background(), apitest.Atoi(t, up.ID))
		if err != nil || row.UploaderConversationID == nil || strconv.Itoa(*row.UploaderConversationID) != convID || row.UploaderAgentID != nil {
			t.Fatalf("visitor's upload row %+v %v", row, err)
		}
		plainURL := s.URL + "/attachments/" + up.ID + "/foto.jpg"
		// Before it is sent: the visitor's only.
		if resp, _ := download(t, visitor, plainURL, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("the visitor's own upload: %d", resp.StatusCode)
		}
		for name, c := range map[string]*apitest.Client{"another visitor": other, "an agent": w.Ana.C} {
			if resp, _ := download(t, c, plainURL, nil); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("%s sees an unsent visitor upload: %d", name, resp.StatusCode)
			}
		}
		// Neither an agent nor another visitor can send it.
		r := w.Ana.C.Op(t, "SendMessage", map[string]any{"input": map[string]any{
			"conversationID": w.Inbound(t, w.WhatsApp, "34600123123", "hola"), "body": "x", "attachmentIDs": []string{up.ID},
		}})
		wantCode(t, r, "BAD_USER_INPUT", "an agent sending a visitor's upload")
		wantCode(t, other.Op(t, "VisitorSendMessage", map[string]any{"body": "mía", "attachmentIDs": []string{up.ID}}),
			"BAD_USER_INPUT", "another visitor sending it")
		// Nor can the visitor send an agent's upload.
		anas := uploadOK(t, w.Ana.C, "de-ana.txt", "text/plain", []byte("de Ana\n"))
		wantCode(t, visitor.Op(t, "VisitorSendMessage", map[string]any{"body": "x", "attachmentIDs": []string{anas.ID}}),
			"BAD_USER_INPUT", "a visitor sending an agent's upload")

		visitor.MustOp(t, "VisitorSendMessage", map[string]any{"body": "Mi foto", "attachmentIDs": []string{up.ID}}, nil)
		var conv attConv
		w.Ana.C.MustOp(t, "Conversation", map[string]any{"id": convID, "last": 10}, &conv)
		var shown *attOut
		for _, e := range conv.Conversation.Messages.Edges {
			for _, a := range e.Node.Attachments {
				if a.ID == up.ID {
					shown = &a
				}
			}
		}
		if shown == nil || shown.ContentType != "image/jpeg" || shown.Filename != "foto.jpg" {
			t.Fatalf("the agent sees %+v", conv)
		}
		// Sent: the visitor and the agents who see the chat download it.
		for name, c := range map[string]*apitest.Client{"the visitor": visitor, "Ana (offered)": w.Ana.C, "anyone, signed": s.Client()} {
			u := plainURL
			if name == "anyone, signed" {
				u = shown.URL
			}
			resp, body := download(t, c, u, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, jpg) {
				t.Fatalf("%s: %d", name, resp.StatusCode)
			}
		}
		for name, c := range map[string]*apitest.Client{"another visitor": other, "Dan": w.Dan.C} {
			if resp, _ := download(t, c, plainURL, nil); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("%s: %d", name, resp.StatusCode)
			}
		}
	})
}

func TestAttachmentCleanup(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		convID := w.Inbound(t, w.WhatsApp, "34600555444", "hola")
		ctx := context.Background()
		content := func(s string) []byte { return []byte("contenido " + s + "\n") }

		unsent := uploadOK(t, w.Ana.C, "x.txt", "text/plain", content("x"))
		sentA := uploadOK(t, w.Ana.C, "y.txt", "text/plain", content("y"))
		twinUnsent := uploadOK(t, w.Ana.C, "z1.txt", "text/plain", content("z"))
		twinSent := uploadOK(t, w.Ana.C, "z2.txt", "text/plain", content("z"))
		w.Ana.C.MustOp(t, "SendMessage", map[string]any{"input": map[string]any{
			"conversationID": convID, "body": "adjuntos", "attachmentIDs": []string{sentA.ID, twinSent.ID},
		}}, nil)
		time.Sleep(20 * time.Millisecond)
		cutoff := time.Now()
		time.Sleep(20 * time.Millisecond)
		recent := uploadOK(t, w.Ana.C, "w.txt", "text/plain", content("w"))

		n, err := s.App.Attachments.Sweep(ctx, cutoff)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("removed %d, want 2 (the old unsent ones)", n)
		}
		exists := func(id string) bool {
			_, err := s.App.DB.Client.Attachment.Get(ctx, apitest.Atoi(t, id))
			return err == nil
		}
		for _, c := range []struct {
			name     string
			id       string
			data     []byte
			row, has bool
		}{
			{"old and unsent: row and file removed", unsent.ID, content("x"), false, false},
			{"sent: kept", sentA.ID, content("y"), true, true},
			{"old and unsent, but its content is sent too: row removed, file kept", twinUnsent.ID, content("z"), false, true},
			{"the sent twin: kept", twinSent.ID, content("z"), true, true},
			{"unsent but recent: kept", recent.ID, content("w"), true, true},
		} {
			if exists(c.id) != c.row || fileExists(t, filePath(s, c.data)) != c.has {
				t.Errorf("%s: row %v file %v", c.name, exists(c.id), fileExists(t, filePath(s, c.data)))
			}
		}
		// The sent twin still downloads.
		var conv attConv
		w.Ana.C.MustOp(t, "Conversation", map[string]any{"id": convID, "last": 10}, &conv)
		for _, e := range conv.Conversation.Messages.Edges {
			for _, a := range e.Node.Attachments {
				if resp, body := download(t, s.Client(), a.URL, nil); resp.StatusCode != http.StatusOK || len(body) != a.Size {
					t.Fatalf("%s after cleanup: %d", a.Filename, resp.StatusCode)
				}
			}
		}
		if n, err := s.App.Attachments.Sweep(ctx, cutoff); err != nil || n != 0 {
			t.Fatalf("a second sweep removed %d (%v)", n, err)
		}
		// The grace period: a cleanup now removes nothing that is a day young.
		if n, err := s.App.Attachments.Cleanup(ctx); err != nil || n != 0 {
			t.Fatalf("Cleanup removed %d recent uploads (%v)", n, err)
		}
		// A deleted conversation's files go with the next sweep.
		w.Ana.C.MustOp(t, "DeleteConversation", map[string]any{"id": convID}, nil)
		if n, err := s.App.Attachments.Sweep(ctx, cutoff); err != nil || n != 2 {
			t.Fatalf("after deleting the conversation a sweep removed %d (%v), want 2", n, err)
		}
		for _, id := range []string{sentA.ID, twinSent.ID} {
			if exists(id) {
				t.Fatalf("attachment %s of the deleted conversation is still there", id)
			}
		}
		if fileExists(t, filePath(s, content("y"))) || fileExists(t, filePath(s, content("z"))) || !fileExists(t, filePath(s, content("w"))) {
			t.Fatal("files after deleting the conversation")
		}
	})
}

// Uploads of identical content racing sweeps that remove it: every row
// left refers to a file that exists.
func TestAttachmentCleanupRacesUploads(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		token, _ := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
		c := s.Client().As(token)
		data := []byte("compartido por todos\n")
		ctx := context.Background()
		stop := make(chan struct{})
		var sweeps sync.WaitGroup
		sweeps.Add(1)
		go func() {
			defer sweeps.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.App.Attachments.Sweep(ctx, time.Now().Add(time.Hour)); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		var uploads sync.WaitGroup
		for i := 0; i < 16; i++ {
			uploads.Add(1)
			go func() {
				defer uploads.Done()
				for j := 0; j < 4; j++ {
					r := c.Upload(t, fmt.Sprintf("f%d-%d.txt", i, j), "text/plain", data)
					if len(r.Errors) > 0 {
						t.Errorf("upload: %s", r.Raw)
						return
					}
					var out struct{ UploadAttachment attOut }
					r.Decode(t, &out)
					// A sweep may already have removed the row (and the
					// file); while the row exists, so must the file. Rows
					// never come back, so a row found after a missing file
					// was there all along.
					id := apitest.Atoi(t, out.UploadAttachment.ID)
					if !fileExists(t, filePath(s, data)) {
						if _, err := s.App.DB.Client.Attachment.Get(ctx, id); err == nil {
							t.Errorf("upload %d has a row but no file", id)
						}
					}
				}
			}()
		}
		uploads.Wait()
		close(stop)
		sweeps.Wait()
		rows := attachmentRows(t, s)
		if rows > 0 && !fileExists(t, filePath(s, data)) {
			t.Fatalf("%d rows left without their file", rows)
		}
	})
}
