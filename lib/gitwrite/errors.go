package gitwrite

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Errors returned by this package. Every error from a network operation is
// classified into at most one of them; check with errors.Is. The error text
// keeps the original detail, with credentials removed.
var (
	// ErrRemoteMoved means the remote branch is no longer where the last Fetch
	// saw it (the compare-and-swap was rejected, or the update was not a fast
	// forward). Fetch, re-apply the changes with Commit and Push again.
	ErrRemoteMoved = errors.New("remote branch moved since last fetch")
	// ErrAuthentication means the remote refused the credentials (HTTP 401 or
	// 403, SSH authentication failure) or the SSH host key did not match
	// KnownHosts. Retrying will not help until the credentials change.
	ErrAuthentication = errors.New("authentication failed")
	// ErrRemoteUnavailable means the remote could not be reached or failed
	// (connection refused or reset, DNS failure, timeout, HTTP 5xx or 429).
	// Retrying later may help.
	ErrRemoteUnavailable = errors.New("remote unavailable")
	// ErrPushRejected means the remote refused the update for another reason
	// than a moved branch (a hook, a protected branch, a broken pack).
	ErrPushRejected = errors.New("push rejected by remote")
	// ErrInvalidPath means a Change or ReadFile/Walk path is not a clean,
	// relative, slash-separated path ("..", ".", ".git", empty segments,
	// leading or trailing slashes, backslashes and NUL are refused).
	ErrInvalidPath = errors.New("invalid path")
	// ErrPathConflict means a Change would turn a non-empty directory into a
	// file, write below something that is not a directory, or delete a
	// directory. Nothing is committed.
	ErrPathConflict = errors.New("path conflicts with an existing entry")
	// ErrInvalidCommit means a CommitRequest's signatures are unusable (empty
	// author name or email, or one containing '<', '>' or a newline).
	ErrInvalidCommit = errors.New("invalid commit request")
	// ErrInvalidOptions means Options failed validation.
	ErrInvalidOptions = errors.New("invalid options")
)

// opError is what network operations return. It carries the classification
// (kind) and a scrubbed message. The raw cause is consulted by Is, so
// errors.Is(err, context.Canceled) or errors.Is(err,
// transport.ErrRepositoryNotFound) still work, but it is deliberately not
// returned by Unwrap: its text may hold credentials.
type opError struct {
	kind  error
	msg   string
	cause error
}

func (e *opError) Error() string { return e.msg }

func (e *opError) Is(target error) bool {
	if e.kind != nil && target == e.kind {
		return true
	}
	return e.cause != nil && errors.Is(e.cause, target)
}

// redactor removes credentials from error text.
type redactor struct {
	secrets []string // longest first
}

const redacted = "***"

// minSecretLen is the shortest secret removed wherever it appears in a message.
const minSecretLen = 4

var (
	// scheme://userinfo@ in any URL inside a message.
	urlUserinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s"']*@`)
	// query strings of URLs (tokens are sometimes passed as ?access_token=).
	urlQuery = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^\s?"']*)\?[^\s"']*`)
)

func newRedactor(a Auth, extra ...string) redactor {
	var s []string
	add := func(v string) {
		// Shorter values would shred every message (a password "p" matches
		// every "p"); they still go through the userinfo and base64 rules.
		if len(v) < minSecretLen {
			return
		}
		s = append(s, v, url.QueryEscape(v), url.PathEscape(v))
	}
	add(a.Password)
	add(a.SSHPassphrase)
	if a.Password != "" {
		s = append(s, base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
	}
	for _, v := range extra {
		add(v)
	}
	sort.Slice(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	return redactor{secrets: s}
}

func (r redactor) clean(msg string) string {
	msg = urlUserinfo.ReplaceAllString(msg, "${1}"+redacted+"@")
	msg = urlQuery.ReplaceAllString(msg, "${1}?"+redacted)
	for _, s := range r.secrets {
		msg = strings.ReplaceAll(msg, s, redacted)
	}
	return msg
}

// wrap classifies err and returns an opError whose text is
// "gitwrite: <op>: <kind>: <scrubbed detail>". A nil err stays nil.
func (r redactor) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return r.wrapKind(op, classify(err), err)
}

func (r redactor) wrapKind(op string, kind, err error) error {
	msg := "gitwrite: " + op + ": "
	if kind != nil {
		msg += kind.Error() + ": "
	}
	return &opError{kind: kind, msg: r.clean(msg + err.Error()), cause: err}
}

// classify maps a raw go-git, net or ssh error to one of the sentinels, or nil
// when none fits.
func classify(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()

	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.As(err, &keyErr), errors.As(err, &revoked),
		strings.Contains(msg, "ssh: unable to authenticate"),
		strings.Contains(msg, "knownhosts: key mismatch"),
		strings.Contains(msg, "knownhosts: key is unknown"):
		return ErrAuthentication
	}

	if code := httpStatus(err); code != 0 {
		switch {
		case code == 401 || code == 403:
			return ErrAuthentication
		case code >= 500 || code == 429 || code == 408:
			return ErrRemoteUnavailable
		}
	}

	var netErr net.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &dnsErr),
		errors.As(err, &opErr),
		errors.As(err, &netErr) && netErr.Timeout():
		return ErrRemoteUnavailable
	}

	switch {
	case strings.Contains(msg, "required to be"), // go-git RequireRemoteRefs
		strings.Contains(msg, "non-fast-forward"),
		strings.Contains(msg, "fetch first"),
		strings.Contains(msg, "stale info"),
		strings.Contains(msg, "failed to update ref"), // receive-pack: old value did not match
		strings.Contains(msg, "failed to lock"),
		strings.Contains(msg, "cannot lock ref"):
		return ErrRemoteMoved
	}
	return nil
}

// httpStatus digs the HTTP status out of go-git's http.Err, which hides
// behind plumbing.UnexpectedError (no Unwrap).
func httpStatus(err error) int {
	for err != nil {
		var he *githttp.Err
		if errors.As(err, &he) && he.Response != nil {
			return he.Response.StatusCode
		}
		var ue *plumbing.UnexpectedError
		if !errors.As(err, &ue) || ue.Err == nil {
			return 0
		}
		err = ue.Err
	}
	return 0
}
