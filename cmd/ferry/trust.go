package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/trust"
)

// proofFlags choose what may prove content beyond the release chain: the
// packer's bundle signature, or an explicit, recorded acceptance of
// unproven content.
type proofFlags struct {
	bundleKeyrings cli.StringSlice
	allowUnproven  bool
	sigstore       sigstoreFlag
}

func (f *proofFlags) flags() []cli.Flag {
	return []cli.Flag{
		f.bundleKeyringFlag(),
		f.sigstore.flag("refuse the bundle"),
		&cli.BoolFlag{Name: "allow-unproven", Usage: "DANGEROUS: accept images, tags and mirror sources that neither the release chain nor a " +
			"verified bundle signature proves (each is listed as UNVERIFIED)", Destination: &f.allowUnproven, Category: "Signatures"},
	}
}

func (f *proofFlags) bundleKeyringFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "bundle-keyring", Usage: "the packer's OpenPGP public keys (repeatable): the bundle must be signed by one " +
		"(ferry pack --sign-key); its signature proves what the release chain does not", Destination: &f.bundleKeyrings, Category: "Signatures"}
}

// bundleKeyring is the --bundle-keyring keys, or nil when none is given.
func (f *proofFlags) bundleKeyring() (*signature.Keyring, error) {
	paths := f.bundleKeyrings.Value()
	if len(paths) == 0 {
		return nil, nil
	}
	kr, err := signature.LoadKeyring(paths...)
	if err != nil {
		return nil, fileArgError(fmt.Errorf("--bundle-keyring: %w", err))
	}
	return kr, nil
}

// trustOptions gathers the keys and acceptances for trust.Check.
func (f *proofFlags) trustOptions(keyring *signature.Keyring, allowUnsigned bool) (trust.Options, error) {
	bkr, err := f.bundleKeyring()
	if err != nil {
		return trust.Options{}, err
	}
	mode, err := f.sigstore.parse()
	if err != nil {
		return trust.Options{}, err
	}
	return trust.Options{Keyring: keyring, BundleKeyring: bkr, AllowUnsigned: allowUnsigned, AllowUnproven: f.allowUnproven, Sigstore: mode}, nil
}

// signFlags are the packer's signing key and where its passphrase comes
// from: a file or the environment, never a flag value, which every user of
// the host could read in the process list.
type signFlags struct {
	keyFile        string
	passphraseFile string
}

// signPassphraseEnv holds the signing key's passphrase when no file does.
const signPassphraseEnv = "FERRY_SIGN_KEY_PASSPHRASE"

func (f *signFlags) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "sign-key", Usage: "sign the bundle with this armored OpenPGP private key `FILE` " +
			"(the bastion checks it with --bundle-keyring and gpg --verify ferry.asc ferry)", Destination: &f.keyFile, Category: "Signatures"},
		&cli.StringFlag{Name: "sign-key-passphrase-file", Usage: "read the signing key's passphrase from `FILE` (else $" + signPassphraseEnv + ")",
			Destination: &f.passphraseFile, Category: "Signatures"},
	}
}

// load reads and unlocks the signing key, or returns nil without --sign-key.
func (f *signFlags) load() (*signature.SigningKey, error) {
	if f.keyFile == "" {
		if f.passphraseFile != "" {
			return nil, usageError(fmt.Errorf("--sign-key-passphrase-file without --sign-key"))
		}
		return nil, nil
	}
	data, err := readSmallFile(f.keyFile, signature.MaxKeyringSize)
	if err != nil {
		return nil, fileArgError(fmt.Errorf("--sign-key: %w", err))
	}
	pass := []byte(os.Getenv(signPassphraseEnv))
	if f.passphraseFile != "" {
		if pass, err = readSmallFile(f.passphraseFile, maxPassphraseSize); err != nil {
			return nil, fileArgError(fmt.Errorf("--sign-key-passphrase-file: %w", err))
		}
		pass = bytes.TrimRight(pass, "\r\n")
	}
	key, err := signature.ParseSigningKey(f.keyFile, data, pass)
	if err != nil {
		return nil, usageError(fmt.Errorf("%w (the passphrase comes from --sign-key-passphrase-file or $%s)", err, signPassphraseEnv))
	}
	return key, nil
}

// maxPassphraseSize caps a passphrase file: a passphrase is a line.
const maxPassphraseSize = 4 << 10

// readSmallFile reads a file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}
