package metrics

import (
	"context"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// The profiles under /debug/pprof/, served with runtime/pprof alone
// (net/http/pprof would bring net/http into the binary):
//
//	/debug/pprof/                 an HTML index of the profiles
//	/debug/pprof/NAME             a runtime/pprof profile by name (heap, goroutine,
//	                              allocs, block, mutex, threadcreate), in the format
//	                              go tool pprof reads; ?debug=1 for text (debug=2 gives
//	                              goroutine stacks as a panic prints them); ?gc=1 runs
//	                              a GC before a heap profile
//	/debug/pprof/profile          a CPU profile over ?seconds=N (30 unless given,
//	                              at most 60), one at a time
//
// The block and mutex profiles stay empty: recording them costs the hot
// path, and nothing here turns them on.
const pprofPrefix = "/debug/pprof/"

// CPU profiles longer than a minute are refused: the connection, and the
// process's only CPU profiler, are held for that long.
const (
	defaultCPUProfileSeconds = 30
	maxCPUProfileSeconds     = 60
)

func isPprofPath(path string) bool {
	return path == pprofPrefix[:len(pprofPrefix)-1] || strings.HasPrefix(path, pprofPrefix)
}

// pprof answers a request for a path that isPprofPath accepts.
func (a *Admin) pprof(ctx context.Context, req *request, body []byte) response {
	name := strings.TrimPrefix(strings.TrimPrefix(req.path, pprofPrefix[:len(pprofPrefix)-1]), "/")
	switch name {
	case "":
		return pprofIndex(body)
	case "profile":
		return a.cpuProfile(ctx, req, body)
	}
	p := pprof.Lookup(name)
	if p == nil {
		return errorResponse(404, body)
	}
	debug, ok := queryInt(req.query, "debug", 0)
	if !ok || debug < 0 {
		return messageResponse(400, body, "debug must be a whole number, 0 or more")
	}
	if gc, _ := queryInt(req.query, "gc", 0); gc > 0 && name == "heap" {
		runtime.GC()
	}
	w := &appendWriter{b: body}
	if err := p.WriteTo(w, debug); err != nil {
		return messageResponse(500, body, "writing the "+name+" profile: "+err.Error())
	}
	ct := profileContentType
	if debug > 0 {
		ct = plainContentType
	}
	return response{status: 200, contentType: ct, body: w.b}
}

const profileContentType = "application/octet-stream"

// cpuProfile takes a CPU profile over the seconds the query asks for. Only
// one can run in a process, so a second request while one runs is
// refused rather than queued behind it.
func (a *Admin) cpuProfile(ctx context.Context, req *request, body []byte) response {
	seconds, ok := queryInt(req.query, "seconds", defaultCPUProfileSeconds)
	if !ok || seconds < 1 || seconds > maxCPUProfileSeconds {
		return messageResponse(400, body, "seconds must be a whole number from 1 to "+strconv.Itoa(maxCPUProfileSeconds))
	}
	if !a.cpuProfiling.CompareAndSwap(false, true) {
		return messageResponse(409, body, "a CPU profile is already being taken; ask again once it is done")
	}
	defer a.cpuProfiling.Store(false)
	w := &appendWriter{b: body}
	if err := pprof.StartCPUProfile(w); err != nil {
		// The profiler is taken by something outside this server, such as
		// a test run with -cpuprofile.
		return messageResponse(500, body, "cannot start a CPU profile: "+err.Error())
	}
	t := time.NewTimer(time.Duration(seconds) * time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		// Shutdown waits for responses in progress: it must not wait a
		// minute for this one.
		pprof.StopCPUProfile()
		return messageResponse(503, body, "the CPU profile was cut short: the server is shutting down")
	}
	// StopCPUProfile returns once the profile is written: w.b is whole.
	pprof.StopCPUProfile()
	return response{status: 200, contentType: profileContentType, body: w.b}
}

// profileDescriptions say what each of runtime/pprof's profiles holds.
var profileDescriptions = map[string]string{
	"allocs":       "Every allocation since the process started, by stack (sampled).",
	"block":        "Where goroutines blocked on synchronisation (off in slotproxy: empty).",
	"goroutine":    "The stacks of all goroutines. debug=2 prints them as a panic would.",
	"heap":         "Live heap objects by allocating stack (sampled). gc=1 collects first.",
	"mutex":        "Holders of contended mutexes (off in slotproxy: empty).",
	"threadcreate": "The stacks that created new OS threads.",
}

// pprofIndex lists the profiles, each with a link to its text form.
func pprofIndex(body []byte) response {
	body = append(body, `<!DOCTYPE html>
<html><head><title>/debug/pprof/</title></head><body>
<p>Profiles of this process: the links give text; without ?debug=1 each is what <code>go tool pprof</code> reads.</p>
<table>
<tr><th>count</th><th>profile</th><th></th></tr>
`...)
	for _, p := range pprof.Profiles() {
		name := p.Name()
		body = append(body, "<tr><td>"...)
		body = strconv.AppendInt(body, int64(p.Count()), 10)
		body = append(body, `</td><td><a href="`...)
		body = append(body, pprofPrefix...)
		body = appendHTMLEscaped(body, name)
		body = append(body, `?debug=1">`...)
		body = appendHTMLEscaped(body, name)
		body = append(body, "</a></td><td>"...)
		body = append(body, profileDescriptions[name]...)
		body = append(body, "</td></tr>\n"...)
	}
	body = append(body, `<tr><td></td><td><a href="`+pprofPrefix+`profile">profile</a></td><td>A CPU profile over ?seconds=N (`+
		strconv.Itoa(defaultCPUProfileSeconds)+` unless given, at most `+strconv.Itoa(maxCPUProfileSeconds)+`), one at a time.</td></tr>
</table>
</body></html>
`...)
	return response{status: 200, contentType: "text/html; charset=utf-8", body: body}
}

// appendHTMLEscaped escapes the characters that could end an attribute or
// open a tag. Package html would do it, at the cost of its entity table.
func appendHTMLEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '&':
			b = append(b, "&amp;"...)
		case '"':
			b = append(b, "&#34;"...)
		case '\'':
			b = append(b, "&#39;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// queryInt returns the integer value of key in query, or def when the key
// is absent; ok is false for a value that is not an integer. Values are
// not percent-decoded: every parameter read here is a plain number.
func queryInt(query, key string, def int) (n int, ok bool) {
	for kv := range strings.SplitSeq(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k == key {
			n, err := strconv.Atoi(v)
			return n, err == nil
		}
	}
	return def, true
}

// appendWriter is an io.Writer appending to a response body.
type appendWriter struct {
	b []byte
}

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
