package registry

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// Short bounds: the fault proxy holds its faulted requests until the client
// goes away, so only the bounds end them.
const (
	testResponseTimeout = 200 * time.Millisecond
	testStallTimeout    = 100 * time.Millisecond
)

func boundedOptions(t *testing.T, retries *atomic.Int32) Options {
	opts := testOptions(t, retries)
	opts.Timeouts = Timeouts{Response: testResponseTimeout, Stall: testStallTimeout}
	return opts
}

// TestStallNoAnswer: a registry that accepts every request and never
// answers fails each attempt at Timeouts.Response, transiently, and the
// error names the host.
func TestStallNoAnswer(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewMemoryRegistry(t)
	img := makeImage("a", "amd64")
	img.push(t, reg.URL, "ocp/art", "latest")
	p := testbed.NewFaultProxy(t, reg.URL)
	p.SetFaults(testbed.Faults{Hangs: 1})
	var retries atomic.Int32
	opts := boundedOptions(t, &retries)
	_, err := New(opts).Resolve(ctx, p.Host+"/ocp/art:latest")
	se, ok := errors.AsType[*StallError](err)
	if !ok || !errors.Is(err, ErrStalled) || !IsTransient(se) {
		t.Fatalf("resolving through a silent registry: %v; want a transient ErrStalled", err)
	}
	if se.Phase != AwaitingAnswer || se.Host != p.Host || se.Bound != testResponseTimeout ||
		!strings.Contains(err.Error(), "no answer from "+p.Host+" within 200ms (timed out)") {
		t.Errorf("error %q (%+v): want the phase, host and bound", err, se)
	}
	if got := retries.Load(); int(got) != opts.Retry.Attempts-1 {
		t.Errorf("%d retries, want %d", got, opts.Retry.Attempts-1)
	}
}

// TestStallMidBlob: a blob body that stops in the middle fails the read at
// Timeouts.Stall; VerifiedBlob resumes it; a body that always stops fails
// after the retries, naming the blob, the host and the bound.
func TestStallMidBlob(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewMemoryRegistry(t)
	img := makeImage(strings.Repeat("0123456789", 2), "amd64")
	img.push(t, reg.URL, "ocp/art", "latest")
	p := testbed.NewFaultProxy(t, reg.URL)
	var retries atomic.Int32
	src, err := New(boundedOptions(t, &retries)).Source(ctx, p.Host+"/ocp/art@"+img.digest.String())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	isLayer := func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, img.layer.digest.String()) }
	size := int64(len(img.layer.data))

	p.SetFaults(testbed.Faults{Stalls: 1, Times: 1, Match: isLayer})
	rc, err := src.VerifiedBlob(ctx, img.layer.digest, size)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(data, img.layer.data) || retries.Load() != 1 || p.Stats().Stalls != 1 {
		t.Fatalf("a blob that stalled once: %d bytes, %v, %d retries, %+v", len(data), err, retries.Load(), p.Stats())
	}

	p.SetFaults(testbed.Faults{Stalls: 1, Match: isLayer})
	rc, err = src.Blob(ctx, img.layer.digest, size)
	if err != nil {
		t.Fatal(err)
	}
	data, err = io.ReadAll(rc)
	rc.Close()
	se, ok := errors.AsType[*StallError](err)
	if !ok || se.Phase != Receiving || len(data) != len(img.layer.data)/2 || !IsTransient(err) ||
		!strings.Contains(err.Error(), img.layer.digest.String()+": no data from "+p.Host+" for 100ms (stalled)") {
		t.Fatalf("a blob that stalls: %d bytes, %v; want half of it and a stall naming the blob and host", len(data), err)
	}

	rc, err = src.VerifiedBlob(ctx, img.layer.digest, size)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "attempts") {
		t.Fatalf("a blob that always stalls, verified: %v; want a stall after the attempts", err)
	}
}

// TestStallPush: a registry that takes an upload and never answers fails
// the attempt at Timeouts.Response; the push is retried and lands.
func TestStallPush(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewMemoryRegistry(t)
	p := testbed.NewFaultProxy(t, reg.URL)
	var retries atomic.Int32
	dest, err := New(boundedOptions(t, &retries)).Destination(ctx, p.Host+"/ocp/pushed")
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	b := newBlob(bytes.Repeat([]byte("ferry"), 4000), "application/octet-stream")
	p.SetFaults(testbed.Faults{Hangs: 1, Times: 1, Match: func(r *http.Request) bool {
		return r.Method == http.MethodPut || r.Method == http.MethodPatch
	}})
	if err := dest.PutBlob(ctx, bytes.NewReader(b.data), b.digest, int64(len(b.data))); err != nil {
		t.Fatalf("push after a silent upload: %v", err)
	}
	if retries.Load() == 0 || p.Stats().Hangs == 0 {
		t.Errorf("no upload was held: %d retries, %+v", retries.Load(), p.Stats())
	}
	if ok, err := dest.HasBlob(ctx, b.digest, int64(len(b.data))); err != nil || !ok {
		t.Errorf("the blob did not land: %v %v", ok, err)
	}

	p.SetFaults(testbed.Faults{Hangs: 1, Match: func(r *http.Request) bool { return r.Method == http.MethodPut }})
	other := newBlob(bytes.Repeat([]byte("other"), 4000), "application/octet-stream")
	err = dest.PutBlob(ctx, bytes.NewReader(other.data), other.digest, int64(len(other.data)))
	if se, ok := errors.AsType[*StallError](err); !ok || se.Phase != AwaitingAnswer || !strings.Contains(err.Error(), "pushing blob") {
		t.Fatalf("push to a registry that never answers the upload: %v", err)
	}
}
