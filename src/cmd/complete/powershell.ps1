# PowerShell completion for kubectl-rotate, from `kubectl rotate completion powershell`.
#   kubectl-rotate completion powershell | Out-String | Invoke-Expression   # this session
#   (add that line to $PROFILE to keep it)
# It asks `kubectl-rotate __complete WORDS...` (verbs, flags, TYPEs, names from the
# cluster). `kubectl rotate ...` is completed by kubectl's own completion through the
# kubectl_complete-rotate helper (`kubectl rotate completion kubectl`).
Register-ArgumentCompleter -Native -CommandName 'kubectl-rotate', 'kubectl-rotate.exe' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @($commandAst.CommandElements | Select-Object -Skip 1 | ForEach-Object { $_.ToString() })
    # NB: PowerShell 7.3+ passes an empty word on to a native command; older ones drop it.
    if ($wordToComplete -eq '') { $words += '' }
    $program = $commandAst.CommandElements[0].ToString()
    $out = @(& $program __complete @words 2>$null)
    if ($out.Count -eq 0) { return }
    $directive = 0
    [int]::TryParse(($out[-1] -replace '^:', ''), [ref]$directive) | Out-Null
    foreach ($line in ($out | Select-Object -SkipLast 1)) {
        $name, $desc = $line -split "`t", 2
        if (-not $desc) { $desc = $name }
        [System.Management.Automation.CompletionResult]::new($name, $name, 'ParameterValue', $desc)
    }
}
