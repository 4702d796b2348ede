package apply

import (
	"fmt"

	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/trust"
)

// Rendered is what the cluster needs for a set of proven images.
type Rendered struct {
	// Objects are applied to the cluster, in order: the signature
	// ConfigMaps, then the ImageDigestMirrorSet and ImageTagMirrorSet.
	Objects []manifests.File
	// Extra are written beside them, never applied: the install-config
	// snippet and, on request, the legacy ImageContentSourcePolicy.
	Extra []manifests.File
}

// Render makes the mirror configuration that routes every proven source
// repository to target, after the given signature ConfigMaps. name names
// the mirror sets ("ferry-<name>"); icsp adds the legacy policy.
func Render(name string, configMaps []manifests.File, sources []string, target string, icsp bool) (*Rendered, error) {
	mirrors, err := manifests.MirrorSets(name, sources, target)
	if err != nil {
		return nil, err
	}
	r := &Rendered{Objects: append(append([]manifests.File(nil), configMaps...), mirrors.Files()...)}
	r.Extra = []manifests.File{{Name: "install-config-snippet.yaml", Data: mirrors.InstallConfig}}
	if icsp {
		r.Extra = append(r.Extra, manifests.File{Name: "icsp-" + mirrors.Name + ".yaml", Data: mirrors.ImageContentSourcePolicy})
	}
	return r, nil
}

// NextSteps are the upgrade commands, one per proven step, in order.
func NextSteps(steps []trust.Step, target string) []string {
	var out []string
	for _, st := range steps {
		out = append(out, fmt.Sprintf("oc adm upgrade --allow-explicit-upgrade --to-image=%s@%s", target, st.Digest))
	}
	return out
}
