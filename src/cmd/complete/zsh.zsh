#compdef kubectl-rotate
# zsh completion for kubectl-rotate, from `kubectl rotate completion zsh`.
#   source <(kubectl-rotate completion zsh)          # this shell (after compinit)
#   kubectl-rotate completion zsh > "${fpath[1]}/_kubectl-rotate"
# It asks `kubectl-rotate __complete WORDS...` (verbs, flags, TYPEs, names from the
# cluster). `kubectl rotate ...` is completed by kubectl's own completion through the
# kubectl_complete-rotate helper (`kubectl rotate completion kubectl`).
_kubectl_rotate() {
    local out directive line name desc
    local -a lines comps
    out=$("${words[1]}" __complete "${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
    lines=("${(@f)out}")
    directive=${lines[-1]#:}
    [[ $directive == <-> ]] || directive=0
    lines=("${(@)lines[1,-2]}")
    for line in $lines; do
        name=${line%%$'\t'*}
        if [[ $line == *$'\t'* ]]; then desc=${line#*$'\t'}; else desc=''; fi
        comps+=("${name//:/\\:}${desc:+:$desc}")
    done
    if (( ${#comps} == 0 )); then
        (( directive & 4 )) || _files
        return
    fi
    if (( directive & 2 )); then
        _describe -t values 'kubectl-rotate' comps -S ''
    else
        _describe -t values 'kubectl-rotate' comps
    fi
}
if [[ $funcstack[1] == _kubectl-rotate ]]; then
    _kubectl_rotate "$@"
else
    compdef _kubectl_rotate kubectl-rotate
fi
