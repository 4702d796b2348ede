package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/e2e/testbed/tartamper"
)

// gpgHome is a private GnuPG home with its agent stopped when the test
// ends. Real gpg makes the packer's key and checks the carried binary, as
// an admin would.
type gpgHome struct {
	dir string
}

func newGPGHome(t *testing.T) *gpgHome {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg is not installed (.ci/run installs gnupg)")
	}
	// A short path: the agent's socket path has a length limit.
	dir, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &gpgHome{dir: dir}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", dir, "--kill", "all").Run()
		_ = os.RemoveAll(dir)
	})
	return g
}

// run runs gpg in the home and returns its combined output.
func (g *gpgHome) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "gpg", append([]string{"--homedir", g.dir, "--batch", "--no-tty"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (g *gpgHome) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := g.run(t, args...)
	if err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// newPackerKey makes the packer's key with gpg's defaults, protected by a
// passphrase, and exports it: the private key for ferry pack, the public
// key for the bastion.
func newPackerKey(t *testing.T, g *gpgHome, dir string) (private, passphraseFile, public string) {
	t.Helper()
	const pass = "a passphrase the packer keeps"
	g.must(t, "--pinentry-mode", "loopback", "--passphrase", pass, "--quick-gen-key", "Packer <packer@ferry.test>", "default", "default", "never")
	private, passphraseFile, public = filepath.Join(dir, "packer.key"), filepath.Join(dir, "packer.pass"), filepath.Join(dir, "packer.pub")
	writeFile(t, private, g.must(t, "--pinentry-mode", "loopback", "--passphrase", pass, "--armor", "--export-secret-keys"))
	writeFile(t, public, g.must(t, "--armor", "--export"))
	writeFile(t, passphraseFile, pass+"\n")
	return private, passphraseFile, public
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSignedBundles: a bundle signed by the packer verifies and applies
// under --bundle-keyring and its binary passes gpg --verify; the same
// bundle with its binary swapped (checksums recomputed) does not, nor one
// signed by another key, nor an unsigned one.
func TestSignedBundles(t *testing.T) {
	t.Parallel()
	g := newGPGHome(t)
	b := newFaultBed(t, smallRelease)
	keys := t.TempDir()
	private, passFile, public := newPackerKey(t, g, keys)

	signed := b.pack(t, "--sign-key", private, "--sign-key-passphrase-file", passFile)
	res := ferryRun(t, "verify", signed, "--keyring", b.keyFile, "--bundle-keyring", public)
	wantExit(t, "verify a signed bundle", res, codeOK, "bundle signature ok: Packer <packer@ferry.test>", "verified")
	if strings.Contains(res.stdout, "UNVERIFIED") {
		t.Errorf("a verified signed bundle still reports something unverified:\n%s", res.stdout)
	}
	res = ferryRun(t, "inspect", signed, "--bundle-keyring", public)
	wantExit(t, "inspect a signed bundle", res, codeOK, "signature: verified, Packer <packer@ferry.test>")
	res = ferryRun(t, "inspect", signed)
	wantExit(t, "inspect without keyring", res, codeOK, "signature: by key", "not checked")
	target := testbed.NewMemoryRegistry(t)
	res = ferryRun(t, applyArgs(t, signed, b.keyFile, target.Host, "--bundle-keyring", public)...)
	wantExit(t, "apply a signed bundle", res, codeOK)
	assertTagsComplete(t, target, targetRepo)

	// The bastion checks the carried binary with gpg before running it.
	extracted := t.TempDir()
	if out, err := exec.Command("tar", "-xf", signed, "-C", extracted, bundle.SelfName, bundle.SelfSignatureName).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf: %v\n%s", err, out)
	}
	g.must(t, "--import", public)
	g.must(t, "--verify", filepath.Join(extracted, bundle.SelfSignatureName), filepath.Join(extracted, bundle.SelfName))

	t.Run("binary swapped, checksums recomputed", func(t *testing.T) {
		path := copyBundle(t, signed)
		self := tartamper.Find(t, path, bundle.SelfName)
		tartamper.Flip(t, path, self.Offset+self.Size/2, 0x10)
		swapped := readFileBytes(t, path)[self.Offset : self.Offset+self.Size]
		forge(t, path, forgery{keepSignature: true, edit: func(idx *bundle.Index) {
			for i := range idx.Files {
				if idx.Files[i].Name == bundle.SelfName {
					idx.Files[i].SHA256 = sha256Hex(swapped)
				}
			}
		}})
		res := ferryRun(t, "verify", path, "--keyring", b.keyFile, "--bundle-keyring", public, "--quiet")
		wantExit(t, "verify", res, codeVerification, "bundle signature ferry-index.json.asc: bad signature")
		dir := t.TempDir()
		if out, err := exec.Command("tar", "-xf", path, "-C", dir, bundle.SelfName, bundle.SelfSignatureName).CombinedOutput(); err != nil {
			t.Fatalf("tar -xf: %v\n%s", err, out)
		}
		if out, err := g.run(t, "--verify", filepath.Join(dir, bundle.SelfSignatureName), filepath.Join(dir, bundle.SelfName)); err == nil {
			t.Errorf("gpg --verify accepted the swapped binary:\n%s", out)
		}
	})
	t.Run("an image added, signature kept", func(t *testing.T) {
		path := copyBundle(t, signed)
		comp := imageOfRole(t, readIndexFile(t, path), bundle.RoleComponent)
		forge(t, path, forgery{keepSignature: true, edit: func(idx *bundle.Index) {
			img := comp
			img.Source, img.Tags = "docker.io/library/nginx", []string{"latest"}
			idx.Images = append(idx.Images, img)
		}})
		res := ferryRun(t, "verify", path, "--keyring", b.keyFile, "--bundle-keyring", public, "--quiet")
		wantExit(t, "verify", res, codeVerification, "bundle signature ferry-index.json.asc: bad signature", "docker.io/library/nginx")
	})
	t.Run("signed by another key", func(t *testing.T) {
		stranger := testbed.NewKey(t, "stranger")
		strangerKey := filepath.Join(t.TempDir(), "stranger.key")
		if err := os.WriteFile(strangerKey, stranger.PrivateArmored(t), 0o600); err != nil {
			t.Fatal(err)
		}
		path := b.pack(t, "--no-self", "--sign-key", strangerKey)
		res := ferryRun(t, "verify", path, "--keyring", b.keyFile, "--bundle-keyring", public, "--quiet")
		wantExit(t, "verify", res, codeVerification, "signed by key "+stranger.KeyID+", which is not in the keyring")
		res = ferryRun(t, "inspect", path, "--bundle-keyring", public)
		wantExit(t, "inspect", res, codeVerification, "which is not in the keyring")
	})
	t.Run("unsigned, keyring given", func(t *testing.T) {
		path := b.pack(t, "--no-self")
		res := ferryRun(t, "verify", path, "--keyring", b.keyFile, "--bundle-keyring", public, "--quiet")
		wantExit(t, "verify", res, codeVerification, "the bundle is not signed, but a bundle keyring was given")
		res = ferryRun(t, "verify", path, "--keyring", b.keyFile, "--quiet")
		wantExit(t, "verify without a bundle keyring", res, codeOK)
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		wrong := filepath.Join(t.TempDir(), "wrong.pass")
		writeFile(t, wrong, "not it")
		res := ferryRun(t, b.packArgs(filepath.Join(t.TempDir(), "b.tar"), "--sign-key", private, "--sign-key-passphrase-file", wrong)...)
		wantExit(t, "pack with a wrong passphrase", res, codeUsage, "wrong passphrase")
	})
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func readFileBytes(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
