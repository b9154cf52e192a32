// `tresor completion bash|zsh`: a shell completion script made from the command tree itself, so
// it offers exactly the commands and flags this version has. zsh uses the same function through
// its bashcompinit layer.
//
//   source <(tresor completion bash)            # or save it under /etc/bash_completion.d/
//   source <(tresor completion zsh)             # in ~/.zshrc

import type { Command } from "commander";
import { printLines } from "./output.js";

/** Each command path ("", "key", "key list", …) with the words that may follow it. */
function words(cmd: Command, prefix: string, out: Map<string, string[]>): Map<string, string[]> {
  const subcommands = cmd.commands.flatMap((c) => [c.name(), ...c.aliases()]);
  const flags = cmd.options.flatMap((o) => [o.long, o.short]).filter((f): f is string => f !== undefined);
  out.set(prefix, [...subcommands, ...flags, ...(prefix === "" ? ["--version", "--help"] : ["--help"])]);
  for (const sub of cmd.commands) {
    for (const name of [sub.name(), ...sub.aliases()]) words(sub, prefix === "" ? name : `${prefix} ${name}`, out);
  }
  return out;
}

/** A bash function `_tresor`: finds the longest known command path among the words typed so far and offers what may follow it. */
export function bashCompletion(program: Command): string {
  const table = [...words(program, "", new Map())].map(([path, list]) => `    "${path}") opts="${list.join(" ")}" ;;`);
  return [
    "# tresor bash completion (tresor completion bash)",
    "_tresor() {",
    '  local cur="${COMP_WORDS[COMP_CWORD]}" path="" candidate="" opts="" i',
    "  for ((i = 1; i < COMP_CWORD; i++)); do",
    '    case "${COMP_WORDS[i]}" in -*) continue ;; esac',
    '    candidate="${path:+$path }${COMP_WORDS[i]}"',
    '    if _tresor_known "$candidate"; then path="$candidate"; fi',
    "  done",
    '  _tresor_words "$path"',
    '  COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
    "}",
    "_tresor_known() { local opts=\"\"; _tresor_words \"$1\"; [ -n \"$opts\" ]; }",
    "_tresor_words() {",
    '  case "$1" in',
    ...table,
    '    *) opts="" ;;',
    "  esac",
    "}",
    "complete -o default -F _tresor tresor",
  ].join("\n");
}

export function registerCompletionCommand(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script: source <(tresor completion bash), or zsh")
    .argument("<shell>", "bash or zsh")
    .action((shell: string) => {
      if (shell !== "bash" && shell !== "zsh") {
        program.error(`error: shell must be bash or zsh, got ${JSON.stringify(shell)}`, { exitCode: 2 });
      }
      const script = bashCompletion(program);
      printLines(...(shell === "zsh" ? ["# tresor zsh completion (tresor completion zsh)", "autoload -U +X bashcompinit && bashcompinit", ...script.split("\n")] : script.split("\n")));
    });
}
