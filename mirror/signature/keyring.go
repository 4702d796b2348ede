package signature

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/ferryhq/ferry/internal/regularfile"
)

// DefaultKeyPath is where RHEL installs Red Hat's release key 2, the key the
// cluster trusts for OpenShift releases.
const DefaultKeyPath = "/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-release"

// MaxKeyringSize caps a keyring file. Public keyrings are a few KiB; a
// larger file is not a keyring.
const MaxKeyringSize = 1 << 20

const armorBegin = "-----BEGIN PGP "

// Keyring is a set of trusted OpenPGP public keys. It is immutable once made,
// so it is safe for concurrent use. The zero value, like a nil *Keyring, is
// an empty keyring that trusts nothing.
type Keyring struct {
	entities openpgp.EntityList
	sources  []string // sources[i] is where entities[i] was read from
}

// Key describes one key of a keyring.
type Key struct {
	// Fingerprint is the primary key's fingerprint, upper-case hex, no spaces.
	Fingerprint string
	// KeyID is the primary key's 16-hex-digit (upper-case) key ID.
	KeyID string
	// SubkeyIDs are the key IDs of its subkeys, in the order of the key.
	SubkeyIDs []string
	// UserIDs are the key's user IDs, sorted.
	UserIDs []string
	// Source names the file (or ParseKeyring name) the key came from.
	Source string
}

// LoadKeyring reads and merges the keyrings in the files at paths; see
// ParseKeyring for what a file may hold. At least one path is required, and
// every file must hold at least one key: there is no implicit default, so
// callers that want DefaultKeyPath pass it.
func LoadKeyring(paths ...string) (*Keyring, error) {
	if len(paths) == 0 {
		return nil, errors.New("load keyring: no keyring files given")
	}
	var rings []*Keyring
	for _, p := range paths {
		data, err := readKeyringFile(p)
		if err != nil {
			return nil, err
		}
		kr, err := ParseKeyring(p, data)
		if err != nil {
			return nil, err
		}
		rings = append(rings, kr)
	}
	return rings[0].Merge(rings[1:]...), nil
}

func readKeyringFile(path string) (data []byte, err error) {
	f, err := regularfile.Open(path, "a keyring file")
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("keyring %s: close: %w", path, cerr)
		}
	}()
	data, err = io.ReadAll(io.LimitReader(f, MaxKeyringSize+1))
	if err != nil {
		return nil, fmt.Errorf("keyring %s: read: %w", path, err)
	}
	if len(data) > MaxKeyringSize {
		return nil, fmt.Errorf("keyring %s: larger than %d bytes, not a public keyring", path, MaxKeyringSize)
	}
	return data, nil
}

// ParseKeyring reads OpenPGP public keys from data; name is used in errors
// and as the keys' Source. data is either binary OpenPGP packets or text
// holding one or more "PGP PUBLIC KEY BLOCK" armor blocks; text outside the
// blocks is ignored, as in Red Hat's published key files, which start with
// plain-text lines describing the key. A file with no key, a private key,
// an armor block of another kind, or bytes that do not parse is an error
// naming the file.
func ParseKeyring(name string, data []byte) (*Keyring, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("keyring %s: file is empty", name)
	}
	var (
		list openpgp.EntityList
		err  error
	)
	switch {
	case bytes.Contains(data, []byte(armorBegin)):
		list, err = parseArmoredKeys(data)
	case data[0]&0x80 != 0:
		// Every binary OpenPGP packet starts with a tag byte whose top
		// bit is set; text never does at its first byte.
		if list, err = openpgp.ReadKeyRing(bytes.NewReader(data)); err != nil {
			err = fmt.Errorf("binary OpenPGP keyring: %w", err)
		}
	default:
		return nil, fmt.Errorf("keyring %s: no OpenPGP public key found (no %q armor block, and not binary OpenPGP)", name, armorBegin+"PUBLIC KEY BLOCK-----")
	}
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", name, err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("keyring %s: no OpenPGP public key found", name)
	}
	for _, e := range list {
		// A keyring is public by nature; refusing private keys keeps
		// secrets out of trust stores, bundles and logs.
		if e.PrivateKey != nil {
			return nil, fmt.Errorf("keyring %s: key %s is a private key; give the public key only", name, keyID(e.PrimaryKey.KeyId))
		}
	}
	kr := &Keyring{}
	kr.add(list, name)
	return kr, nil
}

// parseArmoredKeys decodes every armor block in data, each of which must be
// a public key block.
func parseArmoredKeys(data []byte) (openpgp.EntityList, error) {
	var list openpgp.EntityList
	for n := 1; ; n++ {
		i := bytes.Index(data, []byte(armorBegin))
		if i < 0 {
			return list, nil
		}
		data = data[i:]
		block, err := armor.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("armor block %d: %w", n, err)
		}
		if block.Type != openpgp.PublicKeyType {
			return nil, fmt.Errorf("armor block %d is a %q, not a %q", n, block.Type, openpgp.PublicKeyType)
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, fmt.Errorf("armor block %d: %w", n, err)
		}
		list = append(list, el...)
		// Skip past this block's BEGIN line; the next Index finds the
		// next block, if any.
		data = data[len(armorBegin):]
	}
}

// add appends the entities of list not already present (by fingerprint).
func (k *Keyring) add(list openpgp.EntityList, source string) {
	for _, e := range list {
		if slices.ContainsFunc(k.entities, func(have *openpgp.Entity) bool {
			return bytes.Equal(have.PrimaryKey.Fingerprint, e.PrimaryKey.Fingerprint)
		}) {
			continue
		}
		k.entities = append(k.entities, e)
		k.sources = append(k.sources, source)
	}
}

// Merge returns a new keyring holding the keys of k and then of others. A
// key present more than once (same fingerprint) is kept once, from the
// first keyring that has it. k and others are not changed.
func (k *Keyring) Merge(others ...*Keyring) *Keyring {
	out := &Keyring{}
	for _, r := range append([]*Keyring{k}, others...) {
		if r == nil {
			continue
		}
		for i, e := range r.entities {
			out.add(openpgp.EntityList{e}, r.sources[i])
		}
	}
	return out
}

// Len is the number of keys (primary keys) in the keyring.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	return len(k.entities)
}

// Keys describes the keys of the keyring in order.
func (k *Keyring) Keys() []Key {
	if k == nil {
		return nil
	}
	keys := make([]Key, 0, len(k.entities))
	for i, e := range k.entities {
		key := Key{
			Fingerprint: fingerprint(e.PrimaryKey.Fingerprint),
			KeyID:       keyID(e.PrimaryKey.KeyId),
			Source:      k.sources[i],
		}
		for _, s := range e.Subkeys {
			key.SubkeyIDs = append(key.SubkeyIDs, keyID(s.PublicKey.KeyId))
		}
		for uid := range e.Identities {
			key.UserIDs = append(key.UserIDs, uid)
		}
		slices.Sort(key.UserIDs)
		keys = append(keys, key)
	}
	return keys
}

// entityList is the keyring as go-crypto wants it; nil-safe.
func (k *Keyring) entityList() openpgp.EntityList {
	if k == nil {
		return nil
	}
	return k.entities
}

func keyID(id uint64) string { return fmt.Sprintf("%016X", id) }

func fingerprint(fp []byte) string { return fmt.Sprintf("%X", fp) }
