package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// The scripts ask ferry itself what may follow (urfave/cli's
// --generate-bash-completion), so they never go stale.
const bashCompletion = `# ferry completion for bash: source <(ferry completion bash)
_ferry_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  local opts
  if [[ "$cur" == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o default -o bashdefault -F _ferry_complete ferry
`

const zshCompletion = `#compdef ferry
# ferry completion for zsh: source <(ferry completion zsh)
_ferry() {
  local cur="${words[CURRENT]}"
  local -a prior opts
  prior=("${(@)words[1,CURRENT-1]}")
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$("${prior[@]}" "$cur" --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$("${prior[@]}" --generate-bash-completion 2>/dev/null)}")
  fi
  if (( ${#opts[@]} )) && [[ -n "${opts[1]}" ]]; then
    compadd -- "${opts[@]}"
  else
    _files
  fi
}
compdef _ferry ferry
`

func completionCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash or zsh)",
		ArgsUsage: "bash|zsh",
		Description: `Prints a script that completes ferry's commands and flags.

Examples:
  source <(ferry completion bash)                       # this shell
  ferry completion bash > /etc/bash_completion.d/ferry  # every bash
  ferry completion zsh > "${fpath[1]}/_ferry"           # zsh`,
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "a shell: bash or zsh"); err != nil {
				return err
			}
			switch c.Args().First() {
			case "bash":
				_, err := fmt.Fprint(env.stdout, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(env.stdout, zshCompletion)
				return err
			}
			return usageError(fmt.Errorf("unknown shell %q: want bash or zsh", c.Args().First()))
		},
	}
}
