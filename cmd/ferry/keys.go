package main

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/mirror/signature"
)

// clusterKeySource is how the log line names the cluster's
// release-verification keys, which apply uses when no --keyring is given.
const clusterKeySource = "cluster"

func (f *trustFlags) betaKeyFlag() cli.Flag {
	return &cli.BoolFlag{Name: "beta-key", Usage: "also trust Red Hat's beta key 2, for pre-release payloads (candidate, fast before GA)",
		Destination: &f.betaKey, Category: "Signatures"}
}

// releaseKeyring is the keyring release signatures must verify under: the
// --keyring files, else the system's key file (env.systemKeyPath, where
// RHEL installs Red Hat's release key 2), else that key as built into
// ferry; with --beta-key, plus Red Hat's beta key 2. It reads and logs
// the keys once per command.
func (f *trustFlags) releaseKeyring(env *environment) (*signature.Keyring, error) {
	if f.loaded == nil {
		kr, err := f.readReleaseKeyring(env)
		f.loaded = &loadedKeyring{keyring: kr, err: err}
	}
	return f.loaded.keyring, f.loaded.err
}

func (f *trustFlags) readReleaseKeyring(env *environment) (*signature.Keyring, error) {
	if paths := f.keyrings.Value(); len(paths) > 0 {
		kr, err := signature.LoadKeyring(paths...)
		if err != nil {
			return nil, fileArgError(err)
		}
		return f.use(env, kr, strings.Join(paths, ", "))
	}
	return f.defaultKeyring(env)
}

// defaultKeyring is the keyring when none is given: the system's key file
// if there is one (a file that is there but unreadable is an error, not a
// reason to trust something else), else the built-in release key 2.
func (f *trustFlags) defaultKeyring(env *environment) (*signature.Keyring, error) {
	if path := env.systemKeyPath; path != "" {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			kr, err := signature.LoadKeyring(path)
			if err != nil {
				return nil, fileArgError(err)
			}
			return f.use(env, kr, path)
		}
	}
	kr, err := signature.RedHatReleaseKeyring()
	if err != nil {
		return nil, err
	}
	return f.use(env, kr, signature.BuiltInSource)
}

// use adds the beta key to kr when --beta-key asks for it and logs the
// keys in use, and where they came from.
func (f *trustFlags) use(env *environment, kr *signature.Keyring, source string) (*signature.Keyring, error) {
	if f.betaKey {
		beta, err := signature.RedHatBetaKeyring()
		if err != nil {
			return nil, err
		}
		kr, source = kr.Merge(beta), source+" + built-in beta key (--beta-key)"
	}
	env.log.Info("release signatures verified with", "key", describeKeys(kr), "source", source)
	return kr, nil
}

// describeKeys names each key by its first user ID's name and its
// fingerprint: "Red Hat, Inc. (release key 2) 567E...1D51".
func describeKeys(kr *signature.Keyring) string {
	var names []string
	for _, k := range kr.Keys() {
		name := k.Fingerprint
		if len(k.UserIDs) > 0 {
			owner, _, _ := strings.Cut(k.UserIDs[0], " <")
			name = owner + " " + k.Fingerprint
		}
		names = append(names, name)
	}
	return strings.Join(names, ", ")
}
