package proxy

import "time"

// A client that sends one command and waits for its reply (a Jedis pool, a
// script, any client without pipelining) is the common case. For it, the
// session does not wait for the reply: the backend connection's reader, which
// has the reply in hand, writes it to the client itself, and the session goes
// straight back to waiting for the client's next command.
//
// That saves a goroutine switch per request: without it, the reader wakes
// the session, which then writes. The write is the same one system call
// either way, made by whichever goroutine holds the reply.
//
// The session hands the batch over to the reader by setting direct before it
// lets go of its hold on pending (answerBatch); whoever brings pending to zero
// writes. Until the session has received the batch's wake signal back
// (settleDirect), the batch, the client's write side (writeNow and its
// backlog) and the read buffer the command came in belong to the completion.

// canWriteDirect reports whether the batch just dispatched may be answered by
// the backend reader: a single command forwarded as it is, whose reply goes
// to the client untouched, with nothing before or after it.
func (s *session) canWriteDirect(protoErr error) bool {
	if s.raw == nil || s.held != nil || protoErr != nil || s.quit || s.rpos != s.rend ||
		len(s.entries) != 1 || s.written != 0 || len(s.jobs) != 0 {
		return false
	}
	e := &s.entries[0]
	return e.req != nil && !e.mute
}

// writeDirect is the completion's side: it runs on the backend reader's
// goroutine when the batch's only request has its reply.
func (b *batch) writeDirect(reply []byte) {
	s := b.owner
	b.directErr = s.writeNow(reply)
	s.directReplies.Add(1)
	if b.timed {
		s.account(&b.entries[0], reply, time.Since(b.began))
	}
	// The command's bytes were written to the master before its reply
	// came, so the buffer they were read into is free.
	if b.spent != nil {
		putBuffer(b.spent)
		b.spent = nil
	}
}

// handedOver reports whether the session's batch belongs to its completion
// (answerBatch let go of it with direct set), until settleDirect.
func (s *session) handedOver() bool { return s.batch != nil && s.direct }

// settleDirect waits for the reply the backend reader is writing, if any,
// and takes the batch back. It returns the error of that write.
func (s *session) settleDirect() error {
	if !s.handedOver() {
		return nil
	}
	<-s.wake
	s.direct = false
	s.owner = nil
	err := s.directErr
	s.directErr = nil
	s.resetBatch()
	return err
}

// readAfterDirect is read while the completion writes a reply: the next
// bytes go to a new buffer, taken when they arrive, and the batch is taken
// back once they have.
func (s *session) readAfterDirect() error {
	err := s.readIdle()
	if serr := s.settleDirect(); err == nil {
		err = serr
	}
	if err != nil {
		// Parking or ending: nothing of the batch is kept meanwhile.
		s.releaseBuffers()
	}
	return err
}
