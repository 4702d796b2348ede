// Package signature verifies OpenShift release signatures offline, by the
// rules of the cluster-version-operator (CVO), and fetches them from
// signature stores.
//
// A release signature is a GPG "simple signing" signature: an OpenPGP signed
// message (not a detached signature) whose literal data is a small JSON
// payload naming the release's manifest digest (see [Payload]). [Verify]
// accepts a signature exactly when the cluster would:
//
//   - the message is signed by a key of the [Keyring] that may sign, and
//     neither the signature nor that key has expired or been revoked;
//   - the payload's critical.type is "atomic container signature", it has no
//     unknown field at any level, and its docker-reference is not empty (the
//     reference is never compared to a name: mirrors rename images);
//   - the payload's docker-manifest-digest equals the digest asked for.
//
// Both version 3 and version 4 signature packets are accepted, as the CVO
// accepts both. Version 4 packets are checked by ProtonMail's go-crypto;
// go-crypto cannot read version 3 packets (still found on older Red Hat
// signatures), so those are checked by this package: an RSA PKCS#1 v1.5
// verification over the literal data and the packet's five hashed bytes.
//
// Every failure is a typed error that callers can pick out with errors.As:
// [*UnknownKeyError], [*DigestMismatchError], [*WrongTypeError],
// [*UnknownFieldError], [*PayloadError], [*MalformedError],
// [*BadSignatureError], [*ExpiredError], [*RevokedError], [*KeyUsageError]
// and [*UnsupportedError].
//
// [RedHatReleaseKeyring] is Red Hat's release key 2, built in, for hosts
// without [DefaultKeyPath]; [RedHatBetaKeyring] is its beta key 2, which
// signs pre-release payloads only.
//
// [Fetcher] reads signatures from stores laid out as
// <store>/<algo>=<hex>/signature-<N> over http, https or file, and
// [VerifyAll] keeps the fetched signatures that verify, numbered 1..k.
//
// Images other than releases (operator bundles, related images) are signed
// in the same format by Red Hat and published in lookaside stores
// ([DefaultLookasideStores]) laid out as
// <store>/<repository path>@<algo>=<hex>/signature-<N>. [Fetcher.FetchImage]
// reads them and [VerifyImage] judges them: unlike a release signature, an
// image signature counts only when its docker-reference also names the
// image's repository.
package signature
