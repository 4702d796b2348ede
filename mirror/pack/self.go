package pack

import (
	"bufio"
	"bytes"
	"io"
	"os"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror/signature"
)

// addSelf puts the program at path at the top of the bundle, so the
// bastion runs exactly the version that made it: tar -xf bundle.tar ferry.
// With a signer, its detached signature follows it (ferry.asc), made from
// the same read that fills the bundle.
func addSelf(w *bundle.Writer, path string, signer *signature.SigningKey) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return &SelfError{Path: path, Err: err}
	}
	defer func() {
		if closeErr := f.Close(); closeErr != nil && err == nil {
			err = &SelfError{Path: path, Err: closeErr}
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return &SelfError{Path: path, Err: err}
	}
	slot, err := w.Reserve(bundle.SelfName, st.Size(), "")
	if err != nil {
		return err
	}
	if signer == nil {
		if _, err := io.CopyBuffer(slot, f, make([]byte, copyBufferSize)); err != nil {
			return &SelfError{Path: path, Err: err}
		}
		return slot.Commit()
	}
	sig, err := detachedSignature(signer, io.TeeReader(bufio.NewReaderSize(f, copyBufferSize), slot))
	if err != nil {
		return &SelfError{Path: path, Err: err}
	}
	if err := slot.Commit(); err != nil {
		return err
	}
	return w.AddFile(bundle.SelfSignatureName, sig)
}

// detachedSignature is signer's armored detached signature of data.
func detachedSignature(signer *signature.SigningKey, data io.Reader) ([]byte, error) {
	var sig bytes.Buffer
	if err := signer.SignDetached(&sig, data); err != nil {
		return nil, err
	}
	return sig.Bytes(), nil
}
