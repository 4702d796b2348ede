package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed/tartamper"
)

// fakeSignature stands for a detached signature: this package never
// checks one, it only carries it where it belongs.
func fakeSignature(index []byte) []byte {
	sum := sha256.Sum256(index)
	return append([]byte("signature over "), sum[:]...)
}

func writeSigned(t *testing.T, path string) *Index {
	t.Helper()
	return writeFixture(t, path, WriteOptions{SignIndex: func(index []byte) ([]byte, error) {
		return fakeSignature(index), nil
	}}, smallFixture())
}

func TestSignedIndex(t *testing.T) {
	path := t.TempDir() + "/b.tar"
	writeSigned(t, path)
	entries := tartamper.Entries(t, path)
	if n := len(entries); entries[n-1].Name != IndexSignatureName || entries[n-2].Name != IndexName {
		t.Fatalf("last entries %s, %s: want the index, then its signature", entries[n-2].Name, entries[n-1].Name)
	}
	rep, err := openVerify(t, path, ReadOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("signed bundle: %v %v", err, rep.Err())
	}
	r, err := Open(path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	index, sig := r.IndexSignature()
	if !bytes.Equal(sig, fakeSignature(index)) {
		t.Fatalf("IndexSignature gave %q over %d bytes of index", sig, len(index))
	}
	// tar -xf extracts it beside the index, for gpg --verify.
	if out := runTar(t, "-tf", path); !strings.Contains(out, IndexSignatureName) {
		t.Fatalf("tar -tf does not list %s:\n%s", IndexSignatureName, out)
	}

	unsigned := t.TempDir() + "/u.tar"
	writeFixture(t, unsigned, WriteOptions{}, smallFixture())
	ru, err := Open(unsigned, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ru.Close()
	if index, sig := ru.IndexSignature(); index != nil || sig != nil {
		t.Fatal("an unsigned bundle gave a signature")
	}
}

func TestSignedIndexRefusals(t *testing.T) {
	t.Run("signer fails", func(t *testing.T) {
		path := t.TempDir() + "/b.tar"
		w, err := Create(path, WriteOptions{SignIndex: func([]byte) ([]byte, error) { return nil, errors.New("card removed") }})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Finish(&Index{}); err == nil || !strings.Contains(err.Error(), "card removed") {
			t.Fatalf("Finish: %v", err)
		}
		if _, err := Open(path, ReadOptions{}); err == nil {
			t.Fatal("a bundle whose signing failed was published")
		}
	})
	t.Run("signature twice", func(t *testing.T) {
		path := t.TempDir() + "/b.tar"
		writeSigned(t, path)
		tartamper.Append(t, path, true, tartamper.Raw(t, tar.Header{Name: IndexSignatureName, Typeflag: tar.TypeReg, Size: 3}, []byte("sig")))
		// The reader takes the last signature; the index before it is
		// then not where the reader looks for it.
		mustOpenFail(t, path, ReadOptions{}, "the last entry is")
	})
	t.Run("signature before the index", func(t *testing.T) {
		path := t.TempDir() + "/b.tar"
		writeFixture(t, path, WriteOptions{}, smallFixture())
		// An index signature entry anywhere but after the index is
		// refused by Verify.
		tartamper.InsertBefore(t, path, IndexName, tartamper.File(t, IndexSignatureName, []byte("sig")))
		mustFault(t, path, ReadOptions{}, "index signature out of place")
	})
	t.Run("oversized signature", func(t *testing.T) {
		path := t.TempDir() + "/b.tar"
		writeFixture(t, path, WriteOptions{}, smallFixture())
		tartamper.Append(t, path, true, tartamper.File(t, IndexSignatureName, make([]byte, MaxIndexSignatureSize+1)))
		mustOpenFail(t, path, ReadOptions{}, "not a regular file of 1 to")
	})
}
