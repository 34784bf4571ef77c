package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// User is a client account besides the default user (clients.password),
// as an ACL user of redis-server: AUTH name password. A ReadOnly user is
// refused every write command, with redis-server's NOPERM error; which
// commands write comes from the command table's flags, so that commands a
// newer cluster adds are refused too. Scripts (EVAL, EVALSHA, FCALL) are
// refused to it as well: the proxy cannot see what a script calls.
// Their _RO forms pass.
type User struct {
	Name string
	// Password, or PasswordSHA256, the hex SHA-256 of it, as redis-server's
	// ACL takes "#<hash>" so that the file need not hold the password.
	Password       string
	PasswordSHA256 string
	ReadOnly       bool
}

// userEntry is a user as the server checks it: the digest of its password.
type userEntry struct {
	name     string
	digest   [sha256.Size]byte
	readOnly bool
}

// accounts is who may authenticate: the default user when clients.password
// is set, and the users. Reload replaces it whole.
type accounts struct {
	defaultSet    bool
	defaultDigest [sha256.Size]byte
	users         map[string]*userEntry
}

// newAccounts returns the accounts of password and users; a user that
// fails its Check is left out, and named in the error.
func newAccounts(password string, users []User) (*accounts, error) {
	a := &accounts{users: make(map[string]*userEntry, len(users))}
	if password != "" {
		a.defaultSet, a.defaultDigest = true, sha256.Sum256([]byte(password))
	}
	var errs []error
	for _, u := range users {
		if err := u.Check(); err != nil {
			errs = append(errs, err)
			continue
		}
		e := &userEntry{name: u.Name, readOnly: u.ReadOnly}
		if u.Password != "" {
			e.digest = sha256.Sum256([]byte(u.Password))
		} else {
			b, _ := hex.DecodeString(u.PasswordSHA256)
			copy(e.digest[:], b)
		}
		if a.users[u.Name] != nil {
			errs = append(errs, fmt.Errorf("user %q is listed twice", u.Name))
			continue
		}
		a.users[u.Name] = e
	}
	return a, errors.Join(errs...)
}

// Check reports what is wrong with u, naming neither password.
func (u User) Check() error {
	switch {
	case u.Name == "" || strings.ContainsAny(u.Name, " \t\r\n"):
		return fmt.Errorf("user name %q: empty or with spaces", u.Name)
	case u.Name == "default":
		return fmt.Errorf("user %q: the default user's password is clients.password", u.Name)
	case (u.Password == "") == (u.PasswordSHA256 == ""):
		return fmt.Errorf("user %q: give password or password_sha256, one of them", u.Name)
	case u.PasswordSHA256 != "":
		if b, err := hex.DecodeString(u.PasswordSHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("user %q: password_sha256 is not 64 hex digits", u.Name)
		}
	}
	return nil
}

// required reports whether clients must authenticate.
func (a *accounts) required() bool { return a.defaultSet || len(a.users) > 0 }

// check returns the user that name and password authenticate, or nil. An
// empty name is the default user. Passwords are compared as digests, in
// constant time, and an unknown name costs the same comparison, so that
// the time taken says nothing of either.
func (a *accounts) check(name, password []byte) *userEntry {
	d := sha256.Sum256(password)
	if len(name) == 0 || string(name) == "default" {
		switch {
		case !a.required():
			return defaultUser // redis-server's "nopass" default user
		case !a.defaultSet:
			subtle.ConstantTimeCompare(d[:], d[:])
			return nil // the default user is off when only users are set
		case subtle.ConstantTimeCompare(d[:], a.defaultDigest[:]) == 1:
			return defaultUser
		}
		return nil
	}
	u := a.users[string(name)]
	want := a.defaultDigest
	if u != nil {
		want = u.digest
	}
	if subtle.ConstantTimeCompare(d[:], want[:]) == 1 && u != nil {
		return u
	}
	return nil
}

var defaultUser = &userEntry{name: "default"}

// noPerm is redis-server 7.0's reply to a command the user may not run.
func noPerm(cmd *Command) string {
	return "NOPERM this user has no permissions to run the '" + cmd.Name + "' command"
}

// mayNotRun reports whether a read-only user is refused cmd.
func mayNotRun(cmd *Command) bool {
	if cmd.Flags&CmdWrite != 0 {
		return true
	}
	switch cmd.Name {
	case "eval", "evalsha", "fcall":
		return true
	}
	return false
}

// userName is the name of the user the client authenticated as.
func (s *session) userName() string {
	if u := s.user.Load(); u != nil {
		return u.name
	}
	return "default"
}
