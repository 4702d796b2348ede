package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"
)

// Why ferry deletes with its own requests: containers/image's
// docker ImageReference.DeleteImage reads the whole manifest again before
// each DELETE and then walks the lookaside signature storage, and its
// errors carry the status only in unexported types; a prune deletes
// hundreds of manifests and must tell "this registry does not delete"
// (405, UNSUPPORTED) from any other failure on the first answer. The
// requests go through the tag lister's client: the same credentials, CA
// and client certificates, insecure-registry rules and token protocol.

// DeleteUnsupportedError is a registry that refuses to delete manifests at
// all: distribution answers 405 with the code UNSUPPORTED when its
// storage.delete.enabled is false, and other registries 405 alone.
type DeleteUnsupportedError struct {
	// Repository is host/path.
	Repository string
	StatusCode int
	// Body is the start of the answer, for the message.
	Body string
}

func (e *DeleteUnsupportedError) Error() string {
	msg := fmt.Sprintf("registry %s does not allow deleting manifests (it answered %d", e.Repository, e.StatusCode)
	if b := strings.TrimSpace(e.Body); b != "" {
		msg += ": " + b
	}
	return msg + ")"
}

// deleteStatusError is any other answer than 2xx to a DELETE; its
// StatusCode field is what classify and IsTransient read.
type deleteStatusError struct {
	URL        string
	StatusCode int
	Status     string
	Body       string
}

func (e *deleteStatusError) Error() string {
	msg := fmt.Sprintf("DELETE %s: %s", e.URL, e.Status)
	if b := strings.TrimSpace(e.Body); b != "" {
		msg += ": " + b
	}
	return msg
}

// ManifestDeleter deletes manifests of one repository by digest. Make it
// with Client.ManifestDeleter; its connections are the Client's, shared
// with its other requests to the host. It is not safe for concurrent use:
// a prune deletes one manifest at a time, in order.
type ManifestDeleter struct {
	c      *Client
	named  reference.Named
	h      *hostClient
	auth   types.DockerAuthConfig
	scopes []string
}

// ManifestDeleter returns a deleter for repo (host/path). Its token asks
// for every action on the repository ("*"): distribution wants "delete",
// Quay refuses a scope naming "delete" but grants "*", as containers/image
// found.
func (c *Client) ManifestDeleter(repo string) (*ManifestDeleter, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, fmt.Errorf("invalid repository %q: %w", repo, err)
	}
	named = reference.TrimNamed(named)
	h, auth, err := c.access(named, "deleting in")
	if err != nil {
		return nil, err
	}
	scopes := []string{"repository:" + reference.Path(named) + ":*"}
	return &ManifestDeleter{c: c, named: named, h: h, auth: auth, scopes: scopes}, nil
}

// Delete removes manifest dg from the repository, and with it every tag
// that points at it; its blobs stay until the registry's garbage
// collection. A manifest already gone is not an error: gone is what was
// asked, and a retried DELETE whose first try succeeded finds it so.
// A registry that does not delete gives a *DeleteUnsupportedError.
func (d *ManifestDeleter) Delete(ctx context.Context, dg digest.Digest) error {
	op := "deleting manifest " + d.named.String() + "@" + dg.String()
	return Do(ctx, d.c.opts.Retry, op, func(ctx context.Context) error {
		return d.c.opts.Bounded(ctx, op, func(ctx context.Context) error {
			if err := d.deleteOnce(ctx, dg); err != nil {
				return fmt.Errorf("%s: %w", op, classify(err))
			}
			return nil
		})
	})
}

func (d *ManifestDeleter) deleteOnce(ctx context.Context, dg digest.Digest) error {
	path := apiPath(d.named, "manifests/"+dg.String())
	resp, err := d.h.do(ctx, request{method: http.MethodDelete, path: path, auth: d.auth, scopes: d.scopes})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	u := resp.Request.URL.String()
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusOK, http.StatusNoContent, http.StatusNotFound:
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode == http.StatusMethodNotAllowed || hasErrorCode(body, "UNSUPPORTED") {
		return &DeleteUnsupportedError{Repository: d.named.String(), StatusCode: resp.StatusCode, Body: string(body)}
	}
	return &deleteStatusError{URL: u, StatusCode: resp.StatusCode, Status: resp.Status, Body: string(body)}
}

// hasErrorCode reports whether a distribution error body names code.
func hasErrorCode(body []byte, code string) bool {
	var answer struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &answer) != nil {
		return false
	}
	for _, e := range answer.Errors {
		if e.Code == code {
			return true
		}
	}
	return false
}

// IsDeleteUnsupported reports whether err is a registry refusing deletion.
func IsDeleteUnsupported(err error) bool {
	_, ok := errors.AsType[*DeleteUnsupportedError](err)
	return ok
}
