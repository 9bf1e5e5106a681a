# fish completion for kubectl-rotate, from `kubectl rotate completion fish`.
#   kubectl-rotate completion fish | source          # this shell
#   kubectl-rotate completion fish > ~/.config/fish/completions/kubectl-rotate.fish
# It asks `kubectl-rotate __complete WORDS...` (verbs, flags, TYPEs, names from the
# cluster). `kubectl rotate ...` is completed by kubectl's own completion through the
# kubectl_complete-rotate helper (`kubectl rotate completion kubectl`).
function __kubectl_rotate_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l out (command $words[1] __complete $words[2..-1] "$cur" 2>/dev/null)
    or return
    set -e out[-1]
    # fish takes "candidate<TAB>description" lines as they are.
    printf '%s\n' $out
end
complete -c kubectl-rotate -f -a '(__kubectl_rotate_complete)'
