package router

import "errors"

var (
	// ErrClosed is returned for requests sent to a closed router or pool.
	ErrClosed = errors.New("router: closed")
	// ErrConnLost is the failure of a connection that broke.
	ErrConnLost = errors.New("router: connection lost")
	// ErrTimeout is the failure of a connection whose master did not
	// answer within the read timeout.
	ErrTimeout = errors.New("router: backend read timeout")
	// ErrAuth is a backend's refusal of the configured credentials.
	ErrAuth = errors.New("router: backend authentication failed")
)

// The error replies the proxy gives of its own. They follow redis-server's
// style (an error code word, then text) so clients classify them as usual.
const (
	// MsgNoTable is the reply to a request made before any slot table.
	MsgNoTable = "CLUSTERDOWN The cluster is down (slotproxy has no slot table yet)"
	// MsgSlotDown is the reply when no master serves a slot.
	MsgSlotDown = "CLUSTERDOWN Hash slot not served"
	// MsgConnLost is the reply to a command whose connection broke
	// after it was written.
	MsgConnLost     = "ERR slotproxy: backend connection lost; the command may or may not have run"
	msgTooManyMoves = "ERR slotproxy: too many redirections"
	msgClosed       = "ERR slotproxy: shutting down"
	// MsgUnreachable, followed by the error, is the reply when a master
	// cannot be reached.
	MsgUnreachable = "CLUSTERDOWN slotproxy: master unreachable: "
)
