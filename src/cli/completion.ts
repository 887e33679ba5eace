// `kmu11 completion bash|zsh`: a completion script generated from the command table, so a new
// command and its flags complete once the script is regenerated (`source <(kmu11 completion bash)`).
import { COMMANDS } from '../commands/index.js';
import { UsageError } from '../kmu/errors.js';

export const MODES = ['singlecmd', 'info', 'passwd', 'completion'];
const GLOBAL_OPTIONS = ['--json', '--module', '--token', '--home', '--help', '--version'];

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** One case arm a command: its flags (and -h), as one space-separated word list. */
function flagCases(indent: string): string {
  return COMMANDS.map((c) => `${indent}${quote(c.name)}) flags=${quote(['-h', ...c.flags.map((f) => f.flag)].join(' '))} ;;`).join('\n');
}

// Both shells run the same logic on the words so far: after a global option that takes a value,
// nothing; before the mode, modes and global options; after `singlecmd`, a command name or the
// flags of the last command named (a flag's value is left to the shell's file completion).
function bash(): string {
  const names = COMMANDS.map((c) => c.name).join(' ');
  return `# kmu11 completion for bash: source <(kmu11 completion bash)
_kmu11() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  local i w mode= cmd= flags=
  case "$prev" in --module|--home) COMPREPLY=($(compgen -f -- "$cur")); return ;; --token) return ;; esac
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if [ -z "$mode" ]; then
      case "$w" in --module|--token|--home) ((i++)) ;; -*) ;; *) mode=$w ;; esac
    elif [ "$mode" = singlecmd ]; then
      case " ${names} " in *" $w "*) cmd=$w ;; esac
    fi
  done
  if [ -z "$mode" ]; then
    COMPREPLY=($(compgen -W ${quote([...MODES, ...GLOBAL_OPTIONS, '-h'].join(' '))} -- "$cur")); return
  fi
  case "$mode" in
    completion) COMPREPLY=($(compgen -W 'bash zsh' -- "$cur")); return ;;
    passwd) COMPREPLY=($(compgen -W '--reset --co' -- "$cur")); return ;;
    singlecmd) ;;
    *) return ;;
  esac
  case "$cmd" in
${flagCases('    ')}
  esac
  if [ -n "$cmd" ] && [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [ -n "$cmd" ] && [[ "$prev" == -* ]] && [[ " $flags " == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  else
    COMPREPLY=($(compgen -W ${quote(names)} -- "$cur"))
  fi
}
complete -o default -F _kmu11 kmu11 key_mgmt_util
`;
}

function zsh(): string {
  const names = COMMANDS.map((c) => c.name).join(' ');
  return `#compdef kmu11 key_mgmt_util
# kmu11 completion for zsh: source <(kmu11 completion zsh), or save as _kmu11 on $fpath
_kmu11() {
  local -a modes commands flags
  local i w mode= cmd=
  modes=(${[...MODES, ...GLOBAL_OPTIONS, '-h'].join(' ')})
  commands=(${names})
  case "\${words[CURRENT-1]}" in --module|--home) _files; return ;; --token) return ;; esac
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    if [[ -z $mode ]]; then
      case "$w" in --module|--token|--home) ((i++)) ;; -*) ;; *) mode=$w ;; esac
    elif [[ $mode == singlecmd ]] && (( \${commands[(Ie)$w]} )); then
      cmd=$w
    fi
  done
  if [[ -z $mode ]]; then compadd -- $modes; return; fi
  case "$mode" in
    completion) compadd bash zsh; return ;;
    passwd) compadd -- --reset --co; return ;;
    singlecmd) ;;
    *) return ;;
  esac
  case "$cmd" in
${COMMANDS.map((c) => `    ${quote(c.name)}) flags=(${['-h', ...c.flags.map((f) => f.flag)].join(' ')}) ;;`).join('\n')}
  esac
  if [[ -n $cmd && \${PREFIX} == -* ]]; then compadd -- $flags
  elif [[ -n $cmd && \${words[CURRENT-1]} == -* ]] && (( \${flags[(Ie)\${words[CURRENT-1]}]} )); then _files
  else compadd -- $commands; fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _kmu11 "$@"; else compdef _kmu11 kmu11 key_mgmt_util; fi
`;
}

export function completionScript(shell: string | undefined): string {
  if (shell === 'bash') return bash();
  if (shell === 'zsh') return zsh();
  throw new UsageError(`completion takes bash or zsh, not ${shell === undefined ? 'nothing' : `'${shell}'`}`);
}
