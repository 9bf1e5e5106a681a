# bash completion for kubectl-rotate, from `kubectl rotate completion bash`.
#   source <(kubectl-rotate completion bash)       # this shell
#   kubectl-rotate completion bash > ~/.local/share/bash-completion/completions/kubectl-rotate
# It asks `kubectl-rotate __complete WORDS...` (verbs, flags, TYPEs, names from the
# cluster). `kubectl rotate ...` is completed by kubectl's own completion through the
# kubectl_complete-rotate helper (`kubectl rotate completion kubectl`).
_kubectl_rotate() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local out
    out=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null) || return 0
    local -a lines
    mapfile -t lines <<<"$out"
    local last=$((${#lines[@]} - 1))
    local directive=${lines[last]#:}
    [[ $directive =~ ^[0-9]+$ ]] || directive=0
    unset 'lines[last]'
    COMPREPLY=()
    local line
    for line in "${lines[@]}"; do
        [[ -n $line ]] && COMPREPLY+=("${line%%$'\t'*}")
    done
    if (( directive & 2 )); then
        compopt -o nospace 2>/dev/null
    fi
    if (( ${#COMPREPLY[@]} == 0 )) && (( (directive & 4) == 0 )); then
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
    return 0
}
complete -F _kubectl_rotate kubectl-rotate
