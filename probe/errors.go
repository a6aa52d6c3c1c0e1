package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/certplan/certplan/model"
)

// Error is a failed handshake: Kind is a model.ErrorKind* value, Op the step
// that failed ("connect", "greeting", "ehlo", "capability", "starttls",
// "tls handshake").
type Error struct {
	Kind string
	Op   string
	Err  error
}

func (e *Error) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the model.ErrorKind* value of err, or "" when err is not
// (and does not wrap) an [*Error].
func KindOf(err error) string {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return ""
}

func protoErr(op, format string, args ...any) error {
	return &Error{Kind: model.ErrorKindProtocol, Op: op, Err: fmt.Errorf(format, args...)}
}

// classify turns an I/O error at step op into an *Error.
func classify(op string, err error, ctx context.Context) error {
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &Error{Kind: model.ErrorKindTimeout, Op: op, Err: errors.New("timed out")}
	case ctx.Err() != nil:
		// Cancelled: the deadline was forced into the past.
		return &Error{Kind: model.ErrorKindTimeout, Op: op, Err: ctx.Err()}
	case op == "connect":
		return &Error{Kind: model.ErrorKindConnect, Op: op, Err: trimOp(err)}
	case op == "tls handshake":
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("server closed the connection during the handshake")
		}
		return &Error{Kind: model.ErrorKindTLS, Op: op, Err: trimOp(err)}
	case op == "greeting" && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		return &Error{Kind: model.ErrorKindConnect, Op: op, Err: errors.New("server closed the connection before its greeting")}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Kind: model.ErrorKindProtocol, Op: op, Err: errors.New("server closed the connection")}
	}
	return &Error{Kind: model.ErrorKindProtocol, Op: op, Err: trimOp(err)}
}

// trimOp drops net.OpError's "dial tcp 1.2.3.4:25:" prefix, since the
// endpoint already names the address, and the system call's name, since the
// step does ("connect: connection refused", not "connect: connect: ...").
func trimOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) && se.Err != nil {
		err = se.Err
	}
	return err
}
